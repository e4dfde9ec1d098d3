// Which file a path names, so that each file is probed once and a process's libraries are
// recognised whatever path they were opened by. Device and inode, except on overlayfs (the
// root of most containers): there every container's mount reports its own device with the
// inode of the underlying file, so two containers of one image would look like two files —
// while a uprobe lands on the underlying inode, shared by both. Overlay files are named by
// inode, size and modification time instead.
import { statfsSync, statSync } from "node:fs";

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

/** The identity of the file at `path`, or undefined when it cannot be read (gone). */
export function fileIdentity(path: string): string | undefined {
  let st;
  try {
    st = statSync(path, { bigint: true });
    if (isOverlay(path)) return `overlay:${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return undefined;
  }
  return `${st.dev}:${st.ino}`;
}

function isOverlay(path: string): boolean {
  try {
    return Number(statfsSync(path).type) === OVERLAYFS_SUPER_MAGIC;
  } catch {
    return false;
  }
}
