import Foundation
import RunbookAWS
import RunbookProcess
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

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
    let names = try await list(lineage: lineage)
    if let last = names.last.flatMap(Key.init) {
      store.journalCache.lastSequence.withLock { $0 = max($0, last.sequence) }
    }
    return store.journalCache.index.withLock { known in
      if known[lineage] == nil { known[lineage] = names }
      return known[lineage]!
    }
  }

  /// The entry names of a lineage as S3 lists them now, in order.
  private func list(lineage: String) async throws -> [String] {
    let reply = try await store.call(
      "list-objects-v2",
      ["--prefix", root.key(folder(lineage)), "--query", "Contents[].Key", "--output", "json"])
    guard reply.output.succeeded else {
      throw CheckpointError.unreadable(
        path: "\(store.location)/\(folder(lineage))", reason: reply.reason)
    }
    let keys =
      (try? JSONSerialization.jsonObject(with: reply.output.standardOutput) as? [String]) ?? []
    return keys.map { String($0.split(separator: "/").last ?? "") }.filter { Key($0) != nil }
      .sorted()
  }

  /// Reads the body of the latest result of each of `actions` (what a run of them replays),
  /// from a listing of its own: it runs before the lock is taken, and the listing a run works
  /// from is read under the lock. Bodies never change, so what it read is kept.
  package func verify(lineage: String?, actions: Set<String>) async throws {
    guard let lineage, !actions.isEmpty else { return }
    let keys = try await list(lineage: lineage).compactMap { name in Key(name).map { (name, $0) } }
    let latest = JournalEntry.latest(keys) { ($0.1.event, $0.1.action) }
    for (action, (name, key)) in latest where actions.contains(action) && key.event == .result {
      _ = try await entry(name, key: key, lineage: lineage)
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
    let keys = try await names(lineage: lineage).compactMap { name in Key(name).map { (name, $0) } }
    return JournalEntry.latest(keys) { ($0.1.event, $0.1.action) }.mapValues(\.0)
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

  /// The results journaled in a time window, from the keys (whose sequence is the time of the
  /// append in microseconds), reading only their bodies.
  package func results(lineage: String, from start: Date, until end: Date?) async throws
    -> [JournalEntry]
  {
    let low = UInt64(max(0, start.timeIntervalSince1970) * 1_000_000)
    let high = end.map { UInt64(max(0, $0.timeIntervalSince1970) * 1_000_000) } ?? .max
    var entries: [JournalEntry] = []
    for name in try await list(lineage: lineage) {
      guard let key = Key(name), key.event == .result, key.sequence >= low, key.sequence < high
      else { continue }
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
    let object = "\(root)/\(folder(lineage))\(name)"
    guard let (data, _) = try await store.read(folder(lineage) + name) else {
      throw CheckpointError.unreadable(path: object, reason: "the object is gone")
    }
    guard
      let entry = try? JSONDecoder().decode(
        JournalEntry.self, from: data.split(separator: UInt8(ascii: "\n")).first ?? Data())
    else {
      let reason =
        (try? JSONSerialization.jsonObject(with: data)) == nil
        ? "invalid JSON in \(data.count) bytes" : "a field is missing or has the wrong type"
      throw CheckpointError.corruptJournal(file: object, line: nil, reason: reason)
    }
    store.journalCache.bodies.withLock { $0[name] = entry }
    return entry
  }
}
