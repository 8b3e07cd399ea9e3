import Foundation
import RunbookAWS
import RunbookProcess

#if canImport(Glibc)
  import Glibc
#endif

/// One line of the write-ahead journal (`journal.jsonl`).
package struct JournalEntry: Codable, Sendable, Hashable {
  package enum Event: String, Codable, Sendable {
    /// About to run a write; appended and fsynced before the command starts.
    case intent
    /// The write finished and this is what it produced.
    case result
    /// The write failed (AWS said no); nothing to reconcile.
    case failed
    /// `reset STEP`: every earlier entry of the step no longer counts.
    case reset
  }

  package var at: String
  package var lineage: String
  package var event: Event
  /// `step/action`, or the step alone for `reset`.
  package var action: String
  /// The command, secrets masked (intents only).
  package var command: String?
  package var value: String?
  package var outcome: ActionRecord.Outcome?

  package init(
    lineage: String, event: Event, action: String, command: String? = nil, value: String? = nil,
    outcome: ActionRecord.Outcome? = nil
  ) {
    at = timestamp()
    self.lineage = lineage
    self.event = event
    self.action = action
    self.command = command
    self.value = value
    self.outcome = outcome
  }
}

/// The append-only journal of write intents and results.
package struct Journal: Sendable {
  package let path: String

  package init(path: String) { self.path = path }

  /// Appends one entry and fsyncs it before returning.
  package func append(_ entry: JournalEntry) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let line = try encoder.encode(entry) + Data("\n".utf8)
    let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    // A run killed in the middle of an append leaves a last line without its newline: start a new
    // line, or this entry would be glued to the torn one and lost with it.
    var info = stat()
    var last: UInt8 = UInt8(ascii: "\n")
    if fstat(fd, &info) == 0, info.st_size > 0 { _ = pread(fd, &last, 1, info.st_size - 1) }
    let prefix = last == UInt8(ascii: "\n") ? Data() : Data("\n".utf8)
    try writeAll(fd, prefix + line, path: path)
    guard fsync(fd) == 0 else {
      throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
    }
  }

  /// Every readable entry of `lineage`, in order. A torn last line (a kill during the write) is ignored.
  package func entries(lineage: String) -> [JournalEntry] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    let decoder = JSONDecoder()
    return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
      guard let entry = try? decoder.decode(JournalEntry.self, from: Data(line)),
        entry.lineage == lineage
      else { return nil }
      return entry
    }
  }

  /// The last entry that counts for each action of the lineage (entries before a step's reset do not).
  package func latest(lineage: String) -> [String: JournalEntry] {
    JournalEntry.latest(entries(lineage: lineage)) { ($0.event, $0.action) }
  }
}

extension JournalEntry {
  /// The last item that counts for each action, in journal order: an item of a `reset` event
  /// takes back every earlier one of its step. `describe` gives an item's event and action (an
  /// entry, or the key an entry is stored under).
  package static func latest<Item>(
    _ items: [Item], _ describe: (Item) -> (event: Event, action: String)
  ) -> [String: Item] {
    var latest: [String: Item] = [:]
    for item in items {
      let (event, action) = describe(item)
      if event == .reset {
        latest = latest.filter { !$0.key.hasPrefix(action + "/") }
      } else {
        latest[action] = item
      }
    }
    return latest
  }
}
