// A file that cannot be used, said the way a user reads it: the file named once, the reason
// in words ("no such file"), not an errno name or a message that repeats the path.
const WORDS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "not permitted",
  EISDIR: "a directory, not a file",
  ENOTDIR: "a path through something that is not a directory",
  ELOOP: "too many symbolic links (or a link where none may be)",
  EROFS: "on a read-only file system",
  ENOSPC: "no space left on the device",
  EEXIST: "already exists",
};

/** "PATH: reason" for an error about the file at `path`. */
export function fileError(path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  let reason = (code && WORDS[code]) ?? (e as Error)?.message ?? String(e);
  // Messages that name the file themselves ("PATH: not an ELF file") are not named twice.
  while (reason.startsWith(`${path}: `)) reason = reason.slice(path.length + 2);
  return `${path}: ${reason}`;
}
