import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A private (0700) folder of one process, made inside `parent` (the state directory's
/// `scratch`), for the files of its commands that hold secrets or documents.
///
/// Beside the folder `NAME` lies `NAME.lock`, `flock`ed for as long as the folder is in use: the
/// kernel lets go of it when the process dies, however it dies, so the next run can tell a folder
/// a dead run left (``removeAbandoned(in:)``) from one a living run works in.
package final class PrivateFolder: @unchecked Sendable {
  package let path: String
  private let lockPath: String
  private var fd: Int32

  /// Makes `parent` (0700) when missing, then a new folder in it.
  package init(in parent: String) throws(FileWriteError) {
    do {
      try FileManager.default.createDirectory(
        atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    } catch {
      throw FileWriteError(path: parent, reason: "cannot create the folder")
    }
    chmod(parent, 0o700)
    for _ in 0..<8 {
      let name = "run-" + UUID().uuidString.prefix(13).lowercased()
      // The lock is taken under a hidden name and then renamed: a lock file that can be seen is
      // always held, until its folder is gone.
      let hidden = "\(parent)/.\(name).lock"
      let fd = open(hidden, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
      guard fd >= 0 else { continue }
      guard flock(fd, LOCK_EX | LOCK_NB) == 0, rename(hidden, "\(parent)/\(name).lock") == 0,
        mkdir("\(parent)/\(name)", 0o700) == 0
      else {
        unlink(hidden)
        unlink("\(parent)/\(name).lock")
        close(fd)
        continue
      }
      path = "\(parent)/\(name)"
      lockPath = "\(parent)/\(name).lock"
      self.fd = fd
      return
    }
    throw FileWriteError(path: parent, reason: String(cString: strerror(errno)))
  }

  /// Removes the folder with everything in it, then its lock.
  package func remove() {
    guard fd >= 0 else { return }
    try? FileManager.default.removeItem(atPath: path)
    unlink(lockPath)
    close(fd)
    fd = -1
  }

  deinit { remove() }

  /// Removes every folder in `parent` that no living process holds (left by a run that was
  /// killed); returns their paths. Never touches a folder whose lock is held.
  @discardableResult
  package static func removeAbandoned(in parent: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else {
      return []
    }
    var removed: [String] = []
    let locks = Set(names.filter { $0.hasSuffix(".lock") })
    for name in locks {
      let lock = "\(parent)/\(name)"
      let fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
      guard fd >= 0 else { continue }
      defer { close(fd) }
      guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
      var folder = String(name.dropLast(".lock".count))
      if folder.hasPrefix(".") { folder.removeFirst() }
      if FileManager.default.fileExists(atPath: "\(parent)/\(folder)") {
        try? FileManager.default.removeItem(atPath: "\(parent)/\(folder)")
        removed.append("\(parent)/\(folder)")
      }
      unlink(lock)
    }
    // A folder is made after its lock and removed before it: one without a lock is abandoned.
    for name in names where !name.hasSuffix(".lock") && !name.hasPrefix(".") {
      guard !locks.contains(name + ".lock"), !locks.contains(".\(name).lock") else { continue }
      try? FileManager.default.removeItem(atPath: "\(parent)/\(name)")
      removed.append("\(parent)/\(name)")
    }
    return removed
  }
}
