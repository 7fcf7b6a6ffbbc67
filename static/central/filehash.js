// The SHA-256 of a File of any size, read one slice at a time into an incremental hash (Web
// Crypto's digest needs the whole file in memory). Only one slice is held at a time.
import { sha256 } from "../vendor/noble-hashes/sha2.js";

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// onProgress(done, total) is called after each slice.
export async function sha256OfFile(file, sliceBytes, onProgress) {
  const hash = sha256.create();
  let offset = 0;
  while (offset < file.size) {
    const slice = new Uint8Array(await file.slice(offset, offset + sliceBytes).arrayBuffer());
    hash.update(slice);
    offset += slice.length;
    if (onProgress) onProgress(offset, file.size);
  }
  return hex(hash.digest());
}
