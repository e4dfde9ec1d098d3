// The page's entry point (bundled by scripts/build.sh into build/web/app.js).
import { render } from "preact";
import { App } from "./app.tsx";

render(<App />, document.getElementById("app")!);
