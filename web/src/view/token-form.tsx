// The agent wants a token (`tapwire serve --token`): asked for once, kept for this tab.
import { useState } from "preact/hooks";

export function TokenForm({ refused, onToken }: { refused: boolean; onToken: (t: string) => void }) {
  const [value, setValue] = useState("");
  return (
    <div class="overlay">
      <form
        class="token-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!value) return;
          onToken(value);
          // Asked again (a wrong token), the box starts empty.
          setValue("");
        }}
      >
        <h2>This agent needs a token</h2>
        <p>It was started with <code>--token</code>. The token is kept for this tab only.</p>
        {refused && <p class="error">That token was refused.</p>}
        <input type="password" name="token" autocomplete="off" autoFocus placeholder="token" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit">Connect</button>
      </form>
    </div>
  );
}
