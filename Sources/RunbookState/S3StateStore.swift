import Foundation
import RunbookAWS
import RunbookProcess
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A deployment's state in S3: `state.json` (the same bytes as locally), a `lock` object with a
/// lease, and the journal as one object per entry under `journal/`.
///
/// Every write is conditional: `state.json` is written with `--if-match` the ETag of the version
/// read (`--if-none-match '*'` when there was none), the lock and journal entries with
/// `--if-none-match '*'`. A `PreconditionFailed` means another writer came in between: the
/// write is dropped and ``StateConflictError`` or ``LockHeldError`` is thrown. Every call is an
/// `aws s3api` command run through the ``CommandRunner``, with the run's region and endpoint.
package final class S3StateStore: StateStore {
  package let root: S3Location
  let runner: any CommandRunner
  package let resolver: Resolver
  package let logsDirectory: String
  /// How long a lock stays valid without renewal; it is renewed every third of that.
  package let leaseSeconds: Double
  private let stateVersion = Mutex<StateVersion>(.unknown)
  private let lockVersion = Mutex<String?>(nil)
  /// Why the lock this process held is no longer its own (then nothing more is written).
  let lockLost = Mutex<String?>(nil)
  /// What this process knows of the journal (see ``S3Journal``).
  let journalCache = S3Journal.Cache()
  /// Whether this process found the aws CLI able to write S3 state (``checkCLI()``).
  private let cliChecked = Mutex<Bool>(false)
  /// The history object as this process last read or wrote it (see ``S3History``).
  let historyCache = S3History.Cache()

  enum StateVersion {
    case unknown, absent
    case etag(String)
  }

  package init(
    root: S3Location, runner: any CommandRunner, aws: AWSSettings, logsDirectory: String,
    leaseSeconds: Double = 120
  ) {
    self.root = root
    self.runner = runner
    resolver = Resolver(aws: aws, secrets: SecretStore())
    self.logsDirectory = logsDirectory
    self.leaseSeconds = max(1, leaseSeconds)
  }

  package var location: String { root.description }
  package var stateFile: String { location + "/state.json" }
  package var lockFile: String { location + "/lock" }
  /// Beside the audit logs, in the local state folder.
  package var scratchDirectory: String {
    URL(fileURLWithPath: logsDirectory).deletingLastPathComponent().appendingPathComponent(
      "scratch"
    ).path
  }
  package var journal: any JournalStore { S3Journal(store: self) }
  package var history: any HistoryStore { S3History(store: self) }

  // MARK: - aws s3api

  /// The result of one `aws s3api` call.
  struct Reply {
    var output: ProcessOutput
    /// The JSON object aws printed (nil when it printed none).
    var json: [String: Any]? {
      try? JSONSerialization.jsonObject(with: output.standardOutput) as? [String: Any]
    }
    var errorCode: String? { awsErrorCode(in: output.stderrText) }
    var eTag: String? { json?["ETag"] as? String }
    var reason: String {
      output.stderrText.split(separator: "\n").last.map(String.init) ?? "\(output.termination)"
    }
  }

  /// Runs `aws s3api OPERATION ARGS --bucket BUCKET` (plus region and endpoint).
  func call(_ operation: String, _ arguments: [String]) async throws -> Reply {
    let command = Command.aws(
      ([Argument.text("s3api"), .text(operation), "--bucket", .text(root.bucket)]
        + arguments.map(Argument.text)))
    let scratch = ScratchFiles()
    defer { scratch.removeAll() }
    let invocation = try resolver.invocation(command, values: [:], scratch: scratch)
    let output: ProcessOutput
    do {
      output = try await runner.run(invocation)
    } catch let error as ProcessLaunchError {
      throw CheckpointError.unreadable(path: location, reason: error.description)
    }
    // Ctrl-C reaches the aws child too: the run was interrupted, the state is as S3 has it.
    if case .signaled = output.termination {
      throw Interrupted("interrupted during aws s3api \(operation)")
    }
    if output.termination == .exited(130) {
      throw Interrupted("interrupted during aws s3api \(operation)")
    }
    return Reply(output: output)
  }

  /// The bytes of an object, with its ETag; nil when it does not exist.
  func read(_ key: String) async throws -> (data: Data, eTag: String)? {
    // In $TMPDIR: a read comes before the local state folder may exist (a run refused before its
    // first write leaves none), and the object read is the one S3 keeps anyway.
    let scratch = ScratchFiles()
    defer { scratch.removeAll() }
    let target = try scratch.write("")
    let reply = try await call("get-object", ["--key", root.key(key), target, "--output", "json"])
    guard reply.output.succeeded else {
      if reply.errorCode == "NoSuchKey" { return nil }
      throw CheckpointError.unreadable(path: "\(location)/\(key)", reason: explain(reply))
    }
    guard let data = FileManager.default.contents(atPath: target), let eTag = reply.eTag else {
      throw CheckpointError.unreadable(path: "\(location)/\(key)", reason: "aws returned no object")
    }
    return (data, eTag)
  }

  /// Writes an object only when `condition` holds (`--if-match ETAG` or `--if-none-match *`).
  /// Returns the new ETag, or nil when S3 answered PreconditionFailed (nothing was written).
  /// The body goes through a 0600 file in a private folder (``bodyFolder()``), never the command
  /// line.
  func write(_ key: String, _ data: Data, condition: [String]) async throws -> String? {
    let folder = try bodyFolder()
    defer { folder.remove() }
    let scratch = ScratchFiles(in: folder.path)
    defer { scratch.removeAll() }
    let body = try scratch.write(String(decoding: data, as: UTF8.self))
    let reply = try await call(
      "put-object",
      ["--key", root.key(key), "--body", body, "--content-type", "application/json"] + condition
        + ["--output", "json"])
    guard reply.output.succeeded else {
      if reply.errorCode == "PreconditionFailed" { return nil }
      throw CheckpointError.unwritable(path: "\(location)/\(key)", reason: explain(reply))
    }
    return reply.eTag ?? ""
  }

  /// A private folder of the local state folder's `scratch` for one object's body: a run killed
  /// during the call leaves it where the next run removes it
  /// (``PrivateFolder/removeAbandoned(in:)``), never in `$TMPDIR`.
  private func bodyFolder() throws -> PrivateFolder {
    do { return try PrivateFolder(in: scratchDirectory) } catch {
      throw CheckpointError.unwritable(path: error.path, reason: error.reason)
    }
  }

  private func explain(_ reply: Reply) -> String {
    switch reply.errorCode {
    case "NoSuchBucket":
      "the bucket \(root.bucket) does not exist: create it (with versioning on) or correct --state"
    case "AccessDenied", "AllAccessDisabled":
      "access denied: the credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on it"
    default: reply.reason
    }
  }

  // MARK: - Checkpoint

  package func load() async throws -> Checkpoint? {
    guard let (data, eTag) = try await read("state.json") else {
      stateVersion.withLock { $0 = .absent }
      return nil
    }
    let checkpoint = try StateDirectory.decode(data, file: stateFile)
    stateVersion.withLock { $0 = .etag(eTag) }
    return checkpoint
  }

  package func checkWritable() throws {
    if let reason = folderProblem(logsDirectory) {
      throw CheckpointError.unwritable(path: logsDirectory, reason: reason)
    }
  }

  package func prepare() async throws {
    try await checkCLI()
    do {
      try FileManager.default.createDirectory(
        atPath: logsDirectory, withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
    } catch {
      throw CheckpointError.unwritable(path: logsDirectory, reason: "cannot create the log folder")
    }
  }

  package func save(_ checkpoint: Checkpoint) async throws {
    if let reason = lockLost.withLock({ $0 }) {
      throw StateConflictError(object: lockFile, detail: reason + "; nothing more was written")
    }
    let data = try StateDirectory.encode(checkpoint, file: stateFile)
    let condition: [String]
    switch stateVersion.withLock({ $0 }) {
    case .etag(let eTag): condition = ["--if-match", eTag]
    case .unknown, .absent: condition = ["--if-none-match", "*"]
    }
    guard let eTag = try await write("state.json", data, condition: condition) else {
      throw StateConflictError(
        object: stateFile,
        detail:
          "PreconditionFailed: it was changed in S3 since this run read it (another run, or someone by hand); this run stopped without overwriting it. Check it with 'runbook status', then run again"
      )
    }
    stateVersion.withLock { $0 = .etag(eTag) }
  }

  /// Throws ``AWSCLITooOld`` when the aws CLI lacks the conditional requests S3 state is written
  /// with (``AWSCLI/s3StateRequirements``: Debian 12's aws-cli/2.9.19 has none of them). Asked
  /// once per process, before the first write (``prepare()``, ``removeLock()``), with
  /// `--generate-cli-skeleton`, which sends no request; a probe that tells nothing lets the run
  /// go on.
  package func checkCLI() async throws {
    if cliChecked.withLock({ $0 }) { return }
    let probe = await AWSCLI.probe(AWSCLI.s3StateRequirements, runner: runner, resolver: resolver)
    guard probe.missing.isEmpty else {
      throw AWSCLITooOld(
        subject: location, need: "S3 state is written with conditional requests",
        alternative: "or keep the state in a folder (--state-dir)", probe: probe,
        version: await AWSCLI.installedVersion(runner: runner, resolver: resolver))
    }
    cliChecked.withLock { $0 = true }
  }

  // MARK: - Lock

  func newLockRecord(command: String, startedAt: String) -> LockRecord {
    LockRecord(
      pid: getpid(), host: ProcessInfo.processInfo.hostName, startedAt: startedAt, command: command,
      user: ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.userName,
      expiresAt: timestamp(Date().addingTimeInterval(leaseSeconds)))
  }

  static func encodeLock(_ record: LockRecord) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return ((try? encoder.encode(record)) ?? Data()) + Data("\n".utf8)
  }

  package func acquireLock(command: String) async throws -> any HeldLock {
    let record = newLockRecord(command: command, startedAt: timestamp())
    guard
      let eTag = try await write(
        "lock", Self.encodeLock(record), condition: ["--if-none-match", "*"])
    else {
      throw LockHeldError(path: lockFile, holder: try? await lockHolder())
    }
    lockLost.withLock { $0 = nil }
    return S3Lock(store: self, record: record, eTag: eTag)
  }

  package func lockHolder() async throws -> LockRecord? {
    guard let (data, eTag) = try await read("lock") else {
      lockVersion.withLock { $0 = nil }
      return nil
    }
    lockVersion.withLock { $0 = eTag }
    guard let record = try? JSONDecoder().decode(LockRecord.self, from: data) else {
      throw CheckpointError.corrupt(file: lockFile, reason: "not a lock record")
    }
    return record
  }

  /// Deletes the lock object read last by ``lockHolder()``, only if it is still that version
  /// (`runbook unlock`). False when it changed in between (nothing was deleted).
  package func removeLock() async throws -> Bool {
    guard let eTag = lockVersion.withLock({ $0 }) else { return true }
    try await checkCLI()
    return try await delete("lock", eTag: eTag)
  }

  /// Deletes an object if its ETag is still `eTag`; false when it is not (nothing was deleted).
  func delete(_ key: String, eTag: String) async throws -> Bool {
    let reply = try await call(
      "delete-object", ["--key", root.key(key), "--if-match", eTag, "--output", "json"])
    guard reply.output.succeeded else {
      if reply.errorCode == "PreconditionFailed" { return false }
      if reply.errorCode == "NoSuchKey" { return true }
      throw CheckpointError.unwritable(path: "\(location)/\(key)", reason: explain(reply))
    }
    return true
  }

  /// Whether the bucket keeps old versions (`doctor`): "Enabled", "Suspended" or nil (never enabled).
  package func versioning() async throws -> String? {
    let reply = try await call("get-bucket-versioning", ["--output", "json"])
    guard reply.output.succeeded else {
      throw CheckpointError.unreadable(path: "s3://\(root.bucket)", reason: explain(reply))
    }
    return reply.json?["Status"] as? String
  }
}
