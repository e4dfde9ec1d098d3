// Which file a path names, so that each file is probed once and a process's libraries are
// recognised whatever path they were opened by. Device and inode, except on overlayfs (the
// root of most containers): there every container's mount reports its own device with the
// inode of the underlying file, so two containers of one image would look like two files —
// while a uprobe lands on the underlying inode, shared by both. Overlay files are named by
// inode alone. Size and modification time are always part of it: a file deleted and another
// made (a fresh build, a copy) may get the same inode number, and must not pass for the old.
import { statfsSync, statSync } from "node:fs";

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

/** The identity of the regular file at `path`; undefined when it is not one, or is gone. */
export function fileIdentity(path: string): string | undefined {
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
  if (!st.isFile()) return undefined;
  return `${isOverlay(path, st.dev) ? "overlay" : st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

/** Whether a device is an overlay mount, asked once per device (one per container root). */
const overlayByDevice = new Map<bigint, boolean>();

function isOverlay(path: string, dev: bigint): boolean {
  let overlay = overlayByDevice.get(dev);
  if (overlay === undefined) {
    try {
      overlay = Number(statfsSync(path).type) === OVERLAYFS_SUPER_MAGIC;
    } catch {
      return false;
    }
    if (overlayByDevice.size >= 4096) overlayByDevice.clear();
    overlayByDevice.set(dev, overlay);
  }
  return overlay;
}
