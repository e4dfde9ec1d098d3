// Files imported for their path (embedded by bun build --compile).
declare module "*.o" {
  const path: string;
  export default path;
}
declare module "*.wasm" {
  const path: string;
  export default path;
}
// bpftrace templates, imported as text.
declare module "*.hbs" {
  const text: string;
  export default text;
}
// The web page's files (scripts/build.sh → build/web/*.asset), imported as text.
declare module "*.asset" {
  const text: string;
  export default text;
}
