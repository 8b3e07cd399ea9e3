import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A file that could not be written (a secret's temporary file, the checkpoint).
package struct FileWriteError: Error, Sendable, Hashable, CustomStringConvertible {
  package var path: String
  package var reason: String
  package init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }
  package var description: String { "\(path): cannot be written (\(reason))" }
}

/// Writes `data` to a new file (mode 0600) and fsyncs it.
package func writeFileDurably(_ data: Data, to path: String) throws(FileWriteError) {
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
  guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
  defer { close(fd) }
  try writeAllBytes(fd, data, path: path)
  guard fsync(fd) == 0 else {
    throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
  }
}

/// Writes all of `data` to `fd`, again after an interrupted write.
package func writeAllBytes(_ fd: Int32, _ data: Data, path: String) throws(FileWriteError) {
  var failure: FileWriteError?
  data.withUnsafeBytes { buffer in
    var offset = 0
    while offset < buffer.count {
      let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        failure = FileWriteError(path: path, reason: String(cString: strerror(errno)))
        return
      }
      offset += written
    }
  }
  if let failure { throw failure }
}

/// fsyncs a folder, so that a rename or a new file in it survives a crash.
package func syncDirectory(_ path: String) {
  let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
  guard fd >= 0 else { return }
  fsync(fd)
  close(fd)
}
