// Capture's own errors. A CaptureConfigError is the user's to fix (a schema that does not
// parse, ...): the CLI says it in one line with exit code 2. Setup failures (not root, no
// BTF, no libbpf) are src/bpf's SetupError.
export class CaptureConfigError extends Error {}
