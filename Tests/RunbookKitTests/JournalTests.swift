import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

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
    XCTAssertEqual(journal.entries(lineage: "L"), entries)
    XCTAssertEqual(try permissions(of: journal.path), 0o600)
    let lines = String(decoding: try XCTUnwrap(contents(of: journal.path)), as: UTF8.self)
      .split(separator: "\n", omittingEmptySubsequences: false)
    XCTAssertEqual(lines.count, 4, "one line per entry, each ending in a newline")
  }

  func testMissingJournalHasNoEntries() {
    XCTAssertEqual(journal.entries(lineage: "L"), [])
    XCTAssertEqual(journal.latest(lineage: "L"), [:])
  }

  func testTornLastLineIsIgnored() throws {
    let intent = JournalEntry(lineage: "L", event: .intent, action: "network/vpc")
    try journal.append(intent)
    appendRaw(#"{"action":"network/vpc","at":"2025","event":"res"#)
    XCTAssertEqual(journal.entries(lineage: "L"), [intent])
    XCTAssertEqual(journal.latest(lineage: "L")["network/vpc"]?.event, .intent)
  }

  func testEntryAppendedAfterATornLineIsKept() throws {
    // A run killed in the middle of an append leaves a line without its newline; the next run's
    // first entry must still be readable, or its intent is lost and a resumed write runs blind.
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/vpc"))
    appendRaw(#"{"action":"network/vpc","at":"2025","event":"res"#)
    let next = JournalEntry(lineage: "L", event: .intent, action: "network/subnet-public-2a")
    try journal.append(next)
    XCTAssertEqual(journal.entries(lineage: "L").last, next)
    XCTAssertEqual(journal.latest(lineage: "L")["network/subnet-public-2a"], next)
  }

  func testEntriesOfAnotherLineageAreIgnored() throws {
    let mine = JournalEntry(lineage: "mine", event: .intent, action: "network/vpc")
    try journal.append(JournalEntry(lineage: "old", event: .intent, action: "network/vpc"))
    try journal.append(mine)
    try journal.append(
      JournalEntry(lineage: "old", event: .result, action: "network/vpc", value: "vpc-9"))
    XCTAssertEqual(journal.entries(lineage: "mine"), [mine])
    XCTAssertEqual(journal.latest(lineage: "mine")["network/vpc"], mine)
  }

  func testLatestKeepsTheLastEntryPerAction() throws {
    try journal.append(JournalEntry(lineage: "L", event: .intent, action: "network/vpc"))
    let result = JournalEntry(
      lineage: "L", event: .result, action: "network/vpc", value: "vpc-1", outcome: .created)
    try journal.append(result)
    let other = JournalEntry(lineage: "L", event: .intent, action: "network/igw")
    try journal.append(other)
    XCTAssertEqual(journal.latest(lineage: "L"), ["network/vpc": result, "network/igw": other])
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
      journal.latest(lineage: "L"), ["networking/x": kept, "security/alb": security],
      "a reset of 'network' forgets network/* only")

    let after = JournalEntry(lineage: "L", event: .intent, action: "network/vpc")
    try journal.append(after)
    XCTAssertEqual(
      journal.latest(lineage: "L")["network/vpc"], after, "entries after a reset count")
    // A reset in another lineage changes nothing here.
    try journal.append(JournalEntry(lineage: "other", event: .reset, action: "network"))
    XCTAssertEqual(journal.latest(lineage: "L")["network/vpc"], after)
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
