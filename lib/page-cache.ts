// A file's page cache, for measurements that must start cold (flashdip bench --drop-cache, bench/).
import * as fs from 'fs';
import { getBinding } from './binding';
import { fromNative } from './errors';

/** Bytes of the file currently in the page cache (mincore; reads nothing). */
export function pageCacheResident(path: string): number {
  try {
    return getBinding().file.pageCacheResident(path);
  } catch (err) {
    throw fromNative(err);
  }
}

export interface DropResult {
  /** 'fadvise': posix_fadvise(DONTNEED) on the file (no privileges needed); 'drop_caches': also
   *  `echo 3 > /proc/sys/vm/drop_caches` (root: every clean page of the machine). */
  method: 'fadvise' | 'drop_caches';
  residentBefore: number;
  /** What stayed: pages mapped by a running process or dirty pages are not dropped. */
  residentAfter: number;
}

/**
 * Drops the file's pages from the page cache with posix_fadvise(DONTNEED); with `global`, and when
 * running as root, also writes 3 to /proc/sys/vm/drop_caches (which drops every process's cache).
 */
export function dropPageCache(path: string, options: { global?: boolean } = {}): DropResult {
  const residentBefore = pageCacheResident(path);
  let method: DropResult['method'] = 'fadvise';
  try {
    getBinding().file.pageCacheDrop(path);
  } catch (err) {
    throw fromNative(err);
  }
  if (options.global) {
    try {
      fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
      method = 'drop_caches';
    } catch {
      // not root (or not Linux): the file's own advice above is what was done
    }
  }
  return { method, residentBefore, residentAfter: pageCacheResident(path) };
}
