"""A passthrough FUSE filesystem whose writes the test can stall: the slow or hung file server
(an NFS server that stops answering for a minute) under job.log_root.

    /usr/bin/python3 slowfs.py BACKING MOUNTPOINT --stall-file PATH [--delay-s S]

Every file operation goes to BACKING. While PATH exists, every write(2) and fsync(2) waits (the
writing process sits in the kernel, as with a hung server) until PATH is removed; metadata
(open, create, rename, stat) is not stalled. --delay-s adds that many seconds to every write.
Runs in the foreground, several threads (a stalled write does not stop other operations); stop it
with `fusermount3 -u MOUNTPOINT` (or `umount -l`). Needs /dev/fuse and root (or fusermount).
"""
import argparse
import errno
import os
import time

from fusepy import FUSE, FuseOSError, Operations


class SlowFs(Operations):
    def __init__(self, backing, stall_file, delay_s):
        self.backing = os.path.realpath(backing)
        self.stall_file = stall_file
        self.delay_s = delay_s

    def _path(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _wait(self):
        if self.delay_s:
            time.sleep(self.delay_s)
        while os.path.exists(self.stall_file):
            time.sleep(0.02)

    def __call__(self, op, path, *args):
        try:
            return super().__call__(op, path, *args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO)

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        return {key: getattr(st, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode",
                                                   "st_mtime", "st_nlink", "st_size", "st_uid")}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def access(self, path, mode):
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._path(path), uid, gid)

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        os.rmdir(self._path(path))

    def unlink(self, path):
        os.unlink(self._path(path))

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def symlink(self, target, source):
        os.symlink(source, self._path(target))

    def readlink(self, path):
        return os.readlink(self._path(path))

    def link(self, target, source):
        os.link(self._path(source), self._path(target))

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    def truncate(self, path, length, fh=None):
        with open(self._path(path), "r+") as f:
            f.truncate(length)

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                                   "f_favail", "f_ffree", "f_files", "f_flag",
                                                   "f_frsize", "f_namemax")}

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        self._wait()
        # O_APPEND is the kernel's business here: it passes the offset of the file's end.
        return os.pwrite(fh, data, offset)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        self._wait()
        os.fsync(fh)
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("--stall-file", required=True)
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args()
    FUSE(SlowFs(args.backing, args.stall_file, args.delay_s), args.mountpoint, foreground=True,
         nothreads=False, default_permissions=True)


if __name__ == "__main__":
    main()
