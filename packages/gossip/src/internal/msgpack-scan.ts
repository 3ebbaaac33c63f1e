/**
 * Step 3 of reading a frame (codec.ts): msgpack bytes are checked before
 * msgpackr builds anything from them, so hostile input can neither reach
 * msgpackr's extensions nor make it allocate beyond a small multiple of the
 * frame's size.
 */

/** Deepest nesting of arrays/maps accepted in a frame (envelope included). */
export const MAX_DEPTH = 32;

/**
 * Walks msgpack bytes without building values and returns why they are not
 * acceptable plain data, or undefined if [start, end) holds exactly one
 * acceptable value. Iterative, so hostile nesting cannot overflow the stack.
 */
export function scanMsgpack(buf: Uint8Array, start: number, end: number): string | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = start;
  // Stack of remaining item counts per open container; map entries count 2
  // (key, value) and we track whether the next item is a key.
  const remaining: number[] = [];
  const isMap: boolean[] = [];
  let pendingValues = 1; // values still to read at top level

  const need = (n: number): boolean => pos + n <= end;

  while (true) {
    // Which value are we reading: close finished containers first.
    while (remaining.length > 0 && remaining[remaining.length - 1] === 0) {
      remaining.pop();
      isMap.pop();
    }
    if (remaining.length === 0 && pendingValues === 0) break;
    let expectKey = false;
    if (remaining.length > 0) {
      const top = remaining.length - 1;
      // For maps, remaining counts keys+values; even remaining means a key is next.
      expectKey = isMap[top]! && remaining[top]! % 2 === 0;
      remaining[top]!--;
    } else {
      pendingValues--;
    }
    if (!need(1)) return 'truncated';
    const b = buf[pos++]!;
    if (expectKey) {
      let len: number;
      if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
      else if (b === 0xd9) {
        if (!need(1)) return 'truncated';
        len = buf[pos]!;
        pos += 1;
      } else if (b === 0xda) {
        if (!need(2)) return 'truncated';
        len = view.getUint16(pos);
        pos += 2;
      } else if (b === 0xdb) {
        if (!need(4)) return 'truncated';
        len = view.getUint32(pos);
        pos += 4;
      } else return `map key of type 0x${b.toString(16)} is not a string`;
      if (!need(len)) return 'truncated';
      pos += len;
      continue;
    }
    let container = 0; // number of items (arrays) or entries (maps) opened
    let map = false;
    if (b <= 0x7f || b >= 0xe0) continue; // fixints
    if (b <= 0x8f) {
      container = b & 0x0f;
      map = true;
    } else if (b <= 0x9f) {
      container = b & 0x0f;
    } else if (b <= 0xbf) {
      const len = b & 0x1f;
      if (!need(len)) return 'truncated';
      pos += len;
      continue;
    } else {
      switch (b) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          continue;
        case 0xc4: // bin8
        case 0xd9: {
          // str8
          if (!need(1)) return 'truncated';
          const len = buf[pos]!;
          pos += 1;
          if (!need(len)) return 'truncated';
          pos += len;
          continue;
        }
        case 0xc5:
        case 0xda: {
          if (!need(2)) return 'truncated';
          const len = view.getUint16(pos);
          pos += 2;
          if (!need(len)) return 'truncated';
          pos += len;
          continue;
        }
        case 0xc6:
        case 0xdb: {
          if (!need(4)) return 'truncated';
          const len = view.getUint32(pos);
          pos += 4;
          if (!need(len)) return 'truncated';
          pos += len;
          continue;
        }
        case 0xca: // float32
        case 0xce: // uint32
        case 0xd2: // int32
          if (!need(4)) return 'truncated';
          pos += 4;
          continue;
        case 0xcb: // float64
        case 0xcf: // uint64
        case 0xd3: // int64
          if (!need(8)) return 'truncated';
          pos += 8;
          continue;
        case 0xcc:
        case 0xd0:
          if (!need(1)) return 'truncated';
          pos += 1;
          continue;
        case 0xcd:
        case 0xd1:
          if (!need(2)) return 'truncated';
          pos += 2;
          continue;
        case 0xd4:
          // fixext1 type 0 is how msgpack(r) writes `undefined`; no other extension is allowed.
          if (!need(2)) return 'truncated';
          if (buf[pos] !== 0x00) return `msgpack extension type ${buf[pos]} is not allowed`;
          pos += 2;
          continue;
        case 0xdc:
          if (!need(2)) return 'truncated';
          container = view.getUint16(pos);
          pos += 2;
          break;
        case 0xdd:
          if (!need(4)) return 'truncated';
          container = view.getUint32(pos);
          pos += 4;
          break;
        case 0xde:
          if (!need(2)) return 'truncated';
          container = view.getUint16(pos);
          pos += 2;
          map = true;
          break;
        case 0xdf:
          if (!need(4)) return 'truncated';
          container = view.getUint32(pos);
          pos += 4;
          map = true;
          break;
        case 0xc1:
          return 'reserved msgpack byte 0xc1';
        default:
          // 0xc7-0xc9 ext8/16/32, 0xd5-0xd8 fixext2..16
          return `msgpack extension (0x${b.toString(16)}) is not allowed`;
      }
    }
    // Every item takes at least one byte: a declared count the remaining
    // bytes cannot back is a lie (and would make msgpackr preallocate).
    const items = map ? container * 2 : container;
    if (items > end - pos) return 'truncated (declared length exceeds frame)';
    if (items === 0) continue;
    if (remaining.length + 1 > MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH}`;
    remaining.push(items);
    isMap.push(map);
  }
  if (pos !== end) return `${end - pos} trailing bytes`;
  return undefined;
}
