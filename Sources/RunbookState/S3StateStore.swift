import Foundation
import RunbookAWS
import RunbookProcess
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// `s3://BUCKET/PREFIX`, parsed.
package struct S3Location: Sendable, Hashable, CustomStringConvertible {
  package var bucket: String
  /// Without leading or trailing `/`; may be empty.
  package var prefix: String

  /// Parses `s3://BUCKET[/PREFIX]`, or says why the text is not one.
  package static func parse(_ text: String) -> Result<S3Location, UsageError> {
    guard text.hasPrefix("s3://") else {
      return .failure(UsageError("'\(text)' is not an s3://BUCKET/PREFIX location"))
    }
    let rest = text.dropFirst("s3://".count)
    let bucket = String(rest.prefix { $0 != "/" })
    let prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
    guard
      bucket.range(of: #"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"#, options: .regularExpression) != nil
    else {
      return .failure(UsageError("'\(text)': '\(bucket)' is not an S3 bucket name"))
    }
    guard prefix.range(of: #"^[A-Za-z0-9!_.*'()/-]*$"#, options: .regularExpression) != nil else {
      return .failure(
        UsageError("'\(text)': the prefix may hold letters, digits and !_.*'()/- only"))
    }
    return .success(S3Location(bucket: bucket, prefix: prefix))
  }

  /// This location, with `name` appended to the prefix.
  package func appending(_ name: String) -> S3Location {
    S3Location(bucket: bucket, prefix: prefix.isEmpty ? name : prefix + "/" + name)
  }

  /// The key of an object under the prefix.
  func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

  package var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }
}

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
  package var journal: any JournalStore { S3Journal(store: self) }

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
  /// The body goes through a 0600 temporary file, never the command line.
  func write(_ key: String, _ data: Data, condition: [String]) async throws -> String? {
    let scratch = ScratchFiles()
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

  package func prepare() async throws {
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

/// The S3 lock this process holds; renews its lease every third of the lease time.
final class S3Lock: HeldLock, Sendable {
  let store: S3StateStore
  let previous: LockRecord? = nil
  private let state: Mutex<(eTag: String, released: Bool)>
  private let renewal = Mutex<Task<Void, Never>?>(nil)

  init(store: S3StateStore, record: LockRecord, eTag: String) {
    self.store = store
    state = Mutex((eTag, false))
    let interval = store.leaseSeconds / 3
    renewal.withLock {
      $0 = Task { [weak self] in
        while !Task.isCancelled {
          try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
          guard !Task.isCancelled, let self else { return }
          guard await self.renew(record) else { return }
        }
      }
    }
  }

  /// Writes a fresh lease over the lock, only if the lock is still this run's. False when it is not.
  private func renew(_ record: LockRecord) async -> Bool {
    let (eTag, released) = state.withLock { ($0.eTag, $0.released) }
    guard !released else { return false }
    let fresh = store.newLockRecord(command: record.command, startedAt: record.startedAt)
    do {
      guard
        let next = try await store.write(
          "lock", S3StateStore.encodeLock(fresh), condition: ["--if-match", eTag])
      else {
        store.lockLost.withLock {
          $0 =
            "the lock was released with 'runbook unlock' or taken by another run while this run held it"
        }
        return false
      }
      state.withLock { $0.eTag = next }
    } catch {
      // A failed renewal is tried again at the next interval; the lease is three intervals long.
    }
    return true
  }

  func release() async {
    let task = renewal.withLock { task -> Task<Void, Never>? in
      defer { task = nil }
      return task
    }
    task?.cancel()
    await task?.value
    let eTag = state.withLock { current -> String? in
      guard !current.released else { return nil }
      current.released = true
      return current.eTag
    }
    guard let eTag, store.lockLost.withLock({ $0 }) == nil else { return }
    _ = try? await store.delete("lock", eTag: eTag)
  }
}

/// The journal in S3: one object per entry, `journal/<lineage>/<sequence>.<event>.<action>`
/// (`/` in the action written as `+`), created with `--if-none-match '*'` (S3 has no append).
///
/// The keys alone say which entry counts for an action; the body (the same JSON line as in a
/// local `journal.jsonl`) is read only for a result whose value is needed. The listing is read
/// once per run, under the lock, and kept up to date by this run's own appends.
package struct S3Journal: JournalStore {
  let store: S3StateStore

  /// The listing and the bodies known to this process, kept by the store.
  final class Cache: Sendable {
    /// Entry names by lineage, in order, once listed.
    let index = Mutex<[String: [String]]>([:])
    /// Entries whose bodies are known (written or read by this process), by name.
    let bodies = Mutex<[String: JournalEntry]>([:])
    let lastSequence = Mutex<UInt64>(0)
  }

  var root: S3Location { store.root }

  struct Key {
    var sequence: UInt64
    var event: JournalEntry.Event
    var action: String

    init?(_ name: String) {
      let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
      guard parts.count == 3, let sequence = UInt64(parts[0]),
        let event = JournalEntry.Event(rawValue: parts[1])
      else { return nil }
      self.sequence = sequence
      self.event = event
      action = parts[2].replacingOccurrences(of: "+", with: "/")
    }

    static func name(sequence: UInt64, event: JournalEntry.Event, action: String) -> String {
      String(format: "%020llu", sequence) + ".\(event.rawValue)."
        + action.replacingOccurrences(of: "/", with: "+")
    }
  }

  private func folder(_ lineage: String) -> String { "journal/\(lineage)/" }

  /// The entry names of a lineage, in order (listed once).
  func names(lineage: String) async throws -> [String] {
    if let known = store.journalCache.index.withLock({ $0[lineage] }) { return known }
    let reply = try await store.call(
      "list-objects-v2",
      ["--prefix", root.key(folder(lineage)), "--query", "Contents[].Key", "--output", "json"])
    guard reply.output.succeeded else {
      throw CheckpointError.unreadable(
        path: "\(store.location)/\(folder(lineage))", reason: reply.reason)
    }
    let keys =
      (try? JSONSerialization.jsonObject(with: reply.output.standardOutput) as? [String]) ?? []
    let names = keys.map { String($0.split(separator: "/").last ?? "") }.filter { Key($0) != nil }
      .sorted()
    if let last = names.last.flatMap(Key.init) {
      store.journalCache.lastSequence.withLock { $0 = max($0, last.sequence) }
    }
    return store.journalCache.index.withLock { known in
      if known[lineage] == nil { known[lineage] = names }
      return known[lineage]!
    }
  }

  package func append(_ entry: JournalEntry) async throws {
    if let reason = store.lockLost.withLock({ $0 }) {
      throw StateConflictError(
        object: store.lockFile, detail: reason + "; nothing more was written")
    }
    _ = try await names(lineage: entry.lineage)
    let now = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    let sequence = store.journalCache.lastSequence.withLock { last -> UInt64 in
      last = max(last + 1, now)
      return last
    }
    let name = Key.name(sequence: sequence, event: entry.event, action: entry.action)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let line = try encoder.encode(entry) + Data("\n".utf8)
    guard
      try await store.write(
        folder(entry.lineage) + name, line, condition: ["--if-none-match", "*"]) != nil
    else {
      throw StateConflictError(
        object: "\(store.location)/\(folder(entry.lineage))\(name)",
        detail:
          "PreconditionFailed: another writer created this journal entry; nothing was overwritten")
    }
    store.journalCache.bodies.withLock { $0[name] = entry }
    store.journalCache.index.withLock { $0[entry.lineage, default: []].append(name) }
  }

  /// The names that count, last one per action (entries before a step's reset do not count).
  func latestNames(lineage: String) async throws -> [String: String] {
    var latest: [String: String] = [:]
    for name in try await names(lineage: lineage) {
      guard let key = Key(name) else { continue }
      if key.event == .reset {
        latest = latest.filter { !$0.key.hasPrefix(key.action + "/") }
      } else {
        latest[key.action] = name
      }
    }
    return latest
  }

  package func latest(lineage: String, action: String) async throws -> JournalEntry? {
    guard let name = try await latestNames(lineage: lineage)[action], let key = Key(name) else {
      return nil
    }
    return try await entry(name, key: key, lineage: lineage)
  }

  /// Every entry that counts, one per action (for `state push` and `state pull`).
  package func latestEntries(lineage: String) async throws -> [JournalEntry] {
    var entries: [JournalEntry] = []
    for (_, name) in try await latestNames(lineage: lineage).sorted(by: { $0.value < $1.value }) {
      guard let key = Key(name) else { continue }
      entries.append(try await entry(name, key: key, lineage: lineage, full: true))
    }
    return entries
  }

  /// An entry: from memory, from its key alone (intents and failures, unless `full`), or read.
  private func entry(_ name: String, key: Key, lineage: String, full: Bool = false) async throws
    -> JournalEntry
  {
    if let known = store.journalCache.bodies.withLock({ $0[name] }) { return known }
    if key.event != .result && !full {
      return JournalEntry(lineage: lineage, event: key.event, action: key.action)
    }
    guard let (data, _) = try await store.read(folder(lineage) + name),
      let entry = try? JSONDecoder().decode(
        JournalEntry.self, from: data.split(separator: UInt8(ascii: "\n")).first ?? Data())
    else {
      throw CheckpointError.unreadable(
        path: "\(root)/\(folder(lineage))\(name)", reason: "not a journal entry")
    }
    store.journalCache.bodies.withLock { $0[name] = entry }
    return entry
  }
}
