// Files imported for their path (embedded by bun build --compile).
declare module "*.o" {
  const path: string;
  export default path;
}
