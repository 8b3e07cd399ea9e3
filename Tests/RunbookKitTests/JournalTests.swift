import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

#if canImport(Glibc)
  import Glibc
#endif

/// The write-ahead journal: what survives a kill, what belongs to this lineage, what a reset forgets.
final class JournalTests: XCTestCase {
  var journal: Journal!

  override func setUpWithError() throws {
    journal = Journal(path: try makeScratchFolder().appendingPathComponent("journal.jsonl").path)
  }

  func testAppendedEntriesReadBackInOrder() throws {
    let entries = [
      JournalEntry(
        lineage: "L", event: .intent, action: "network/vpc", command: "aws ec2 create-vpc"),
      JournalEntry(
        lineage: "L", event: .result, action: "network/vpc", value: "vpc-1", outcome: .created),
      JournalEntry(lineage: "L", event: .failed, action: "network/igw"),
    ]
    for entry in entries { try journal.append(entry) }
    XCTAssertEqual(try journal.entries(lineage: "L"), entries)
    XCTAssertEqual(try permissions(of: journal.path), 0o600)
    let lines = String(decoding: try XCTUnwrap(contents(of: journal.path)), as: UTF8.self)
      .split(separator: "\n", omittingEmptySubsequences: false)
    XCTAssertEqual(lines.count, 4, "one line per entry, each ending in a newline")
  }

  func testMissingJournalHasNoEntries() {
    XCTAssertEqual(try journal.entries(lineage: "L"), [])
    XCTAssertEqual(try journal.latest(lineage: "L"), [:])
  }

  func testTornLastLineIsIgnored() throws {
    let intent = JournalEntry(lineage: "L", event: .intent, action: "network/vpc")
    try journal.append(intent)
    appendRaw(#"{"action":"network/vpc","at":"2025","event":"res"#)
    XCTAssertEqual(try journal.entries(lineage: "L"), [intent])
    XCTAssertEqual(try journal.latest(lineage: "L")["network/vpc"]?.event, .intent)
  }

  func testEntryAppendedAfterATornLineIsKept() throws {
    // A run killed in the middle of an append leaves a line without its newline; the next run's
    // first entry must still be readable, or its intent is lost and a resumed write runs blind.
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/vpc"))
    appendRaw(#"{"action":"network/vpc","at":"2025","event":"res"#)
    let next = JournalEntry(lineage: "L", event: .intent, action: "network/subnet-public-2a")
    try journal.append(next)
    XCTAssertEqual(try journal.entries(lineage: "L").last, next)
    XCTAssertEqual(try journal.latest(lineage: "L")["network/subnet-public-2a"], next)
  }

  func testEntriesOfAnotherLineageAreIgnored() throws {
    let mine = JournalEntry(lineage: "mine", event: .intent, action: "network/vpc")
    try journal.append(JournalEntry(lineage: "old", event: .intent, action: "network/vpc"))
    try journal.append(mine)
    try journal.append(
      JournalEntry(lineage: "old", event: .result, action: "network/vpc", value: "vpc-9"))
    XCTAssertEqual(try journal.entries(lineage: "mine"), [mine])
    XCTAssertEqual(try journal.latest(lineage: "mine")["network/vpc"], mine)
  }

  func testLatestKeepsTheLastEntryPerAction() throws {
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/vpc"))
    let result = JournalEntry(
      lineage: "L", event: .result, action: "network/vpc", value: "vpc-1", outcome: .created)
    try journal.append(result)
    let other = JournalEntry(lineage: "L", event: .intent, action: "network/igw")
    try journal.append(other)
    XCTAssertEqual(try journal.latest(lineage: "L"), ["network/vpc": result, "network/igw": other])
  }

  func testLatestHonoursReset() throws {
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/vpc"))
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/igw"))
    let kept = JournalEntry(lineage: "L", event: .intent, action: "networking/x")
    try journal.append(kept)
    let security = JournalEntry(lineage: "L", event: .intent, action: "security/alb")
    try journal.append(security)
    try journal.append(JournalEntry(lineage: "L", event: .reset, action: "network"))
    XCTAssertEqual(
      try journal.latest(lineage: "L"), ["networking/x": kept, "security/alb": security],
      "a reset of 'network' forgets network/* only")

    let after = JournalEntry(lineage: "L", event: .intent, action: "network/vpc")
    try journal.append(after)
    XCTAssertEqual(
      try journal.latest(lineage: "L")["network/vpc"], after, "entries after a reset count")
    // A reset in another lineage changes nothing here.
    try journal.append(JournalEntry(lineage: "other", event: .reset, action: "network"))
    XCTAssertEqual(try journal.latest(lineage: "L")["network/vpc"], after)
  }

  /// A reset of one action (`run --refresh`) takes back that action's entries only, and keeps
  /// its reason.
  func testAResetOfOneActionForgetsOnlyThatAction() throws {
    try journal.append(
      JournalEntry(lineage: "L", event: .result, action: "network/subnet-a", value: "subnet-1"))
    let other = JournalEntry(lineage: "L", event: .result, action: "network/subnet-ab")
    try journal.append(other)
    try journal.append(
      JournalEntry(
        lineage: "L", event: .reset, action: "network/subnet-a", reason: "missing: gone"))
    XCTAssertEqual(try journal.latest(lineage: "L"), ["network/subnet-ab": other])
    XCTAssertEqual(try journal.entries().last?.reason, "missing: gone")
  }

  /// A torn line is never left in the middle: the next append cuts it off, so that every line
  /// but the last one is a whole entry.
  func testTheNextAppendCutsATornLineOff() throws {
    let intent = JournalEntry(lineage: "L", event: .intent, action: "network/vpc")
    try journal.append(intent)
    appendRaw(#"{"action":"network/vpc","at":"2025","event":"res"#)
    let next = JournalEntry(lineage: "L", event: .intent, action: "network/igw")
    try journal.append(next)
    let lines = String(decoding: try XCTUnwrap(contents(of: journal.path)), as: UTF8.self)
      .split(separator: "\n")
    XCTAssertEqual(lines.count, 2, "\(lines)")
    XCTAssertFalse(lines.contains { $0.contains(#""event":"res""#) })
    XCTAssertEqual(try journal.entries(lineage: "L"), [intent, next])
  }

  /// A torn last line that is a whole entry (only its newline is missing) is kept.
  func testATornLineThatIsAWholeEntryIsKept() throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let whole = JournalEntry(lineage: "L", event: .intent, action: "network/vpc")
    writeFile(journal.path, contents: try encoder.encode(whole))
    XCTAssertEqual(try journal.entries(lineage: "L"), [whole])
    let next = JournalEntry(lineage: "L", event: .intent, action: "network/igw")
    try journal.append(next)
    XCTAssertEqual(try journal.entries(lineage: "L"), [whole, next])
  }

  /// A line in the middle that is not an entry throws, naming the file and the line, whichever
  /// lineage is asked for; the file is left as it is.
  func testALineInTheMiddleThatIsNotAnEntryThrowsNamingIt() throws {
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/vpc"))
    appendRaw(#"{"action":"network/igw","at":"2025","event":"intent","lin"# + "\n")
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/eip"))
    appendRaw(#"{"action":"x","at":"2025","event":"bogus","lineage":"L"}"# + "\n")
    let before = contents(of: journal.path)
    for lineage in ["L", "other"] {
      XCTAssertThrowsError(try journal.entries(lineage: lineage)) { error in
        XCTAssertEqual(
          error as? CheckpointError,
          .corruptJournal(file: journal.path, line: 2, reason: "invalid JSON in 57 bytes"))
      }
    }
    XCTAssertThrowsError(try journal.verify(lineage: nil, actions: []))
    // The second bad line: JSON, but not an entry.
    let lines = String(decoding: before ?? Data(), as: UTF8.self).split(separator: "\n")
    let repaired = ([lines[0]] + lines[2...]).joined(separator: "\n") + "\n"
    writeFile(journal.path, contents: Data(repaired.utf8))
    XCTAssertThrowsError(try journal.latest(lineage: "L")) { error in
      XCTAssertEqual(
        error as? CheckpointError,
        .corruptJournal(
          file: journal.path, line: 3, reason: "a field is missing or has the wrong type"))
      XCTAssertTrue("\(error)".contains("journal.jsonl: line 3 is not a journal entry"), "\(error)")
      XCTAssertFalse("\(error)".contains("\n"))
    }
  }

  private func appendRaw(_ text: String) {
    let handle = FileHandle(forWritingAtPath: journal.path)!
    handle.seekToEndOfFile()
    handle.write(Data(text.utf8))
    try? handle.close()
  }
}

final class AuditRequestIDTests: XCTestCase {
  func testRequestIDsAreFoundInTheShapesTheCLIPrintsThem() {
    XCTAssertEqual(
      awsRequestID(
        in: #"{"ResponseMetadata": {"RequestId": "8f2b3c1d-0a4e-4b6f-9c7d-123456789abc"}}"#),
      "8f2b3c1d-0a4e-4b6f-9c7d-123456789abc")
    XCTAssertEqual(
      awsRequestID(
        in:
          "An error occurred (AccessDenied) when calling the PutObject operation: Access Denied (Request ID: 4QX2B9N1ZK7YH3TR)"
      ),
      "4QX2B9N1ZK7YH3TR")
    XCTAssertNil(awsRequestID(in: "vpc-0123456789abcdef0\n"))
    XCTAssertNil(
      awsRequestID(
        in: "An error occurred (Throttling) when calling the DescribeVpcs operation: Rate exceeded")
    )
  }
}
