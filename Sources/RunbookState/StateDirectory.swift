import Foundation
import RunbookAWS
import RunbookProcess

#if canImport(Glibc)
  import Glibc
#endif

/// Why the checkpoint cannot be used. Nothing is ever written when one of these is thrown.
package enum CheckpointError: Error, Sendable, Hashable, CustomStringConvertible {
  case corrupt(file: String, reason: String)
  case unknownFormat(file: String, version: Int)
  case foreignDeployment(file: String, checkpoint: String, configuration: String)
  case foreignRegion(file: String, checkpoint: String, configuration: String)
  case foreignAccount(file: String, checkpoint: String, credentials: String)
  case unwritable(path: String, reason: String)
  case unreadable(path: String, reason: String)
  /// An entry of the journal cannot be read: a line of `journal.jsonl` other than a torn last one
  /// (`line` counts from 1), or an entry object in S3 (`line` nil).
  case corruptJournal(file: String, line: Int?, reason: String)

  package var description: String {
    switch self {
    case .corrupt(let file, let reason):
      "\(file): not a usable checkpoint (\(reason)); it was left as it is, and the previous version is in \(file).bak"
    case .unknownFormat(let file, let version):
      "\(file): format version \(version) is not one this runbook reads (it reads \(Checkpoint.currentFormatVersion)); use the runbook version that wrote it"
    case .foreignDeployment(let file, let checkpoint, let configuration):
      "\(file): belongs to deployment '\(checkpoint)', but the configuration is for '\(configuration)'; use another --state-dir or --state"
    case .foreignRegion(let file, let checkpoint, let configuration):
      "\(file): belongs to region \(checkpoint), but this run targets \(configuration); use --region \(checkpoint) or another --state-dir or --state"
    case .foreignAccount(let file, let checkpoint, let credentials):
      "\(file): belongs to AWS account \(checkpoint), but the credentials are for account \(credentials); switch credentials or use another --state-dir or --state"
    case .unwritable(let path, let reason):
      "\(path): cannot write the checkpoint (\(reason))"
    case .unreadable(let path, let reason):
      "\(path): cannot be read (\(reason))"
    case .corruptJournal(let file, let line, let reason):
      "\(file): \(line.map { "line \($0) is" } ?? "is") not a journal entry (\(reason)); nothing was run and the journal was left as it is: an entry that cannot be read may be a write in progress, so repair or remove \(line == nil ? "that object" : "that line") by hand, then check that what it names exists only once"
    }
  }
}

/// Another run holds the state directory's lock.
package struct LockHeldError: Error, Sendable, Hashable, CustomStringConvertible {
  package var path: String
  package var holder: LockRecord?

  package init(path: String, holder: LockRecord?) {
    self.path = path
    self.holder = holder
  }

  package var description: String {
    guard let holder else { return "\(path): another run holds the lock" }
    var text =
      "\(path): another run holds the lock (pid \(holder.pid) on \(holder.host)"
      + (holder.user.map { " as \($0)" } ?? "")
      + ", '\(holder.command)', since \(holder.startedAt))"
    if let expiry = holder.expiresAt {
      if holder.expired() {
        text +=
          "; its lease expired at \(expiry), so that run has probably died: when it is gone, 'runbook unlock' releases the lock"
      } else {
        text += "; lease renewed until \(expiry)"
      }
    }
    return text
  }
}

/// Who holds (or last held) a lock.
package struct LockRecord: Codable, Sendable, Hashable {
  package var pid: Int32
  package var host: String
  package var startedAt: String
  package var command: String
  /// The operator's login name (S3 locks).
  package var user: String?
  /// Until when the holder's lease runs; renewed while it works (S3 locks).
  package var expiresAt: String?

  package init(
    pid: Int32, host: String, startedAt: String, command: String, user: String? = nil,
    expiresAt: String? = nil
  ) {
    self.pid = pid
    self.host = host
    self.startedAt = startedAt
    self.command = command
    self.user = user
    self.expiresAt = expiresAt
  }

  /// Whether the lease ran out before `now` (never for a lock without a lease).
  package func expired(now: Date = Date()) -> Bool {
    guard let expiresAt, let date = parseTimestamp(expiresAt) else { return false }
    return date < now
  }
}

/// The files of one deployment's state: checkpoint, backup, journal, lock and logs.
package struct StateDirectory: Sendable {
  package let path: String

  package init(path: String) { self.path = path }

  package var stateFile: String { path + "/state.json" }
  package var backupFile: String { path + "/state.json.bak" }
  package var journalFile: String { path + "/journal.jsonl" }
  package var lockFile: String { path + "/lock" }
  package var historyFile: String { path + "/history.jsonl" }
  package var logsDirectory: String { path + "/logs" }

  /// Reads the checkpoint; nil when there is none yet. Never writes.
  package func load() throws -> Checkpoint? {
    guard let data = FileManager.default.contents(atPath: stateFile) else {
      if FileManager.default.fileExists(atPath: stateFile) {
        throw CheckpointError.corrupt(file: stateFile, reason: "cannot be read")
      }
      return nil
    }
    return try Self.decode(data, file: stateFile)
  }

  /// A checkpoint from the bytes of a `state.json` (wherever it is kept), validated.
  static func decode(_ data: Data, file: String) throws -> Checkpoint {
    struct Header: Decodable { var formatVersion: Int? }
    let header: Header
    do {
      header = try JSONDecoder().decode(Header.self, from: data)
    } catch {
      let reason =
        data.isEmpty
        ? "the file is empty" : "invalid JSON in \(data.count) bytes, truncated or damaged"
      throw CheckpointError.corrupt(file: file, reason: reason)
    }
    guard let version = header.formatVersion else {
      throw CheckpointError.corrupt(file: file, reason: "no formatVersion field")
    }
    guard version == Checkpoint.currentFormatVersion else {
      throw CheckpointError.unknownFormat(file: file, version: version)
    }
    let checkpoint: Checkpoint
    do {
      checkpoint = try JSONDecoder().decode(Checkpoint.self, from: data)
    } catch {
      throw CheckpointError.corrupt(file: file, reason: "a field is missing or has the wrong type")
    }
    if checkpoint.lineage.range(of: "^[A-Za-z0-9-]{1,64}$", options: .regularExpression) == nil {
      throw CheckpointError.corrupt(
        file: file, reason: "lineage '\(checkpoint.lineage)' is not a lineage id")
    }
    if checkpoint.serial < 0 {
      throw CheckpointError.corrupt(file: file, reason: "serial \(checkpoint.serial) is negative")
    }
    return checkpoint
  }

  /// The bytes of `state.json` for a checkpoint (the same wherever it is kept).
  static func encode(_ checkpoint: Checkpoint, file: String) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    do { return try encoder.encode(checkpoint) + Data("\n".utf8) } catch {
      throw CheckpointError.unwritable(path: file, reason: "cannot encode: \(error)")
    }
  }

  /// Checks, without writing, that ``prepare()`` can make the directory and write in it.
  package func checkWritable() throws {
    if let reason = folderProblem(path) {
      throw CheckpointError.unwritable(path: path, reason: reason)
    }
  }

  /// Creates the directory (0700) when missing and checks that it can be written.
  package func prepare() throws {
    do {
      try FileManager.default.createDirectory(
        atPath: logsDirectory, withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
    } catch {
      throw CheckpointError.unwritable(path: path, reason: "cannot create the directory")
    }
    guard access(path, W_OK) == 0 else {
      throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
    }
  }

  /// Writes the checkpoint atomically: temp file, fsync, keep the old one as `.bak`, rename, fsync the folder.
  package func save(_ checkpoint: Checkpoint) throws {
    let data = try Self.encode(checkpoint, file: stateFile)
    let temporary = "\(stateFile).tmp-\(getpid())"
    try writeDurably(data, to: temporary)
    if FileManager.default.fileExists(atPath: stateFile) {
      let backupTemporary = "\(backupFile).tmp-\(getpid())"
      unlink(backupTemporary)
      guard link(stateFile, backupTemporary) == 0, rename(backupTemporary, backupFile) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw CheckpointError.unwritable(path: backupFile, reason: reason)
      }
    }
    guard rename(temporary, stateFile) == 0 else {
      let reason = String(cString: strerror(errno))
      unlink(temporary)
      throw CheckpointError.unwritable(path: stateFile, reason: reason)
    }
    syncDirectory(path)
  }

  /// Takes the lock, or throws ``LockHeldError`` at once. A record left by a dead process is returned
  /// as `previous` so the caller can warn that it was taken over.
  package func lock(command: String) throws -> StateLock {
    let fd = open(lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw CheckpointError.unwritable(path: lockFile, reason: String(cString: strerror(errno)))
    }
    let previous = readLockRecord(fd)
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      close(fd)
      throw LockHeldError(path: lockFile, holder: previous)
    }
    let record = LockRecord(
      pid: getpid(), host: ProcessInfo.processInfo.hostName, startedAt: timestamp(),
      command: command)
    let data = (try? JSONEncoder().encode(record)) ?? Data()
    ftruncate(fd, 0)
    _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    fsync(fd)
    return StateLock(fd: fd, previous: previous.flatMap { $0.pid == getpid() ? nil : $0 })
  }

  /// Who holds the lock now, if anyone (for `status` and `doctor`).
  package func lockHolder() -> LockRecord? {
    let fd = open(lockFile, O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    if flock(fd, LOCK_EX | LOCK_NB) == 0 {
      flock(fd, LOCK_UN)
      return nil
    }
    return readLockRecord(fd)
  }

  private func readLockRecord(_ fd: Int32) -> LockRecord? {
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = pread(fd, &buffer, buffer.count, 0)
    guard count > 0 else { return nil }
    return try? JSONDecoder().decode(LockRecord.self, from: Data(buffer[0..<count]))
  }
}

/// A held lock; released (and its record cleared) by ``release()`` or by the process ending.
package final class StateLock: @unchecked Sendable {
  private var fd: Int32
  /// The record of a run that died holding the lock, if this lock took it over.
  package let previous: LockRecord?

  init(fd: Int32, previous: LockRecord?) {
    self.fd = fd
    self.previous = previous
  }

  package func release() {
    guard fd >= 0 else { return }
    ftruncate(fd, 0)
    flock(fd, LOCK_UN)
    close(fd)
    fd = -1
  }

  deinit { release() }
}

/// Why `path` cannot be made into a folder this process writes in, nil when it can: it or a
/// folder above it is something else than a folder, or the nearest one that exists is not
/// writable. Reads only.
func folderProblem(_ path: String) -> String? {
  var current = path
  while true {
    var info = stat()
    if lstat(current, &info) == 0 {
      var target = stat()
      guard stat(current, &target) == 0 else {
        return current == path ? "a broken symbolic link" : "\(current) is a broken symbolic link"
      }
      guard (target.st_mode & S_IFMT) == S_IFDIR else {
        return current == path ? "a file, not a folder" : "\(current) is a file, not a folder"
      }
      guard access(current, W_OK | X_OK) == 0 else {
        let reason = String(cString: strerror(errno))
        return current == path ? reason : "\(current): \(reason)"
      }
      return nil
    }
    let parent = (current as NSString).deletingLastPathComponent
    guard !parent.isEmpty, parent != current else { return nil }
    current = parent
  }
}

/// Writes `data` to a new file (mode 0600) and fsyncs it.
func writeDurably(_ data: Data, to path: String) throws {
  do { try writeFileDurably(data, to: path) } catch {
    throw CheckpointError.unwritable(path: error.path, reason: error.reason)
  }
}

/// Appends to the file at `path` (made 0600 when absent) under an exclusive `flock`, and fsyncs
/// before returning: `bytes` is given the locked descriptor (to look at a torn last line a killed
/// append left) and returns what to append. The journal and the run history append this way.
func appendLocked(to path: String, _ bytes: (Int32) throws -> Data) throws {
  let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
  guard fd >= 0 else {
    throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
  }
  defer { close(fd) }
  guard flock(fd, LOCK_EX) == 0 else {
    throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
  }
  try writeAll(fd, try bytes(fd), path: path)
  guard fsync(fd) == 0 else {
    throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
  }
}

func writeAll(_ fd: Int32, _ data: Data, path: String) throws {
  do { try writeAllBytes(fd, data, path: path) } catch {
    throw CheckpointError.unwritable(path: error.path, reason: error.reason)
  }
}
