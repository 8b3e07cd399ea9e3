import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The end of `destroy`: what the leftover scan lists, and what it says each thing costs.
final class LeftoverScanTests: XCTestCase {
  let account = "123456789012"
  var prefix: String { "arn:aws:ec2:ap-northeast-2:\(account)" }
  var snapshot: String {
    "arn:aws:rds:ap-northeast-2:\(account):snapshot:unisync-mysql-final-20261203170000"
  }

  /// Runs the scan with the tagging API listing `tagged`, and returns its progress lines.
  func scan(tagged: [String], addresses: [[String]]) async throws -> [String] {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity(account)
    func json(_ value: Any) throws -> String {
      String(decoding: try JSONSerialization.data(withJSONObject: value), as: UTF8.self)
    }
    fixture.runner.on(
      "aws", "resourcegroupstaggingapi", "get-resources", reply: .ok(try json(tagged)))
    fixture.runner.on("aws", "ec2", "describe-addresses", reply: .ok(try json(addresses)))
    fixture.runner.on("aws", "ecr", "describe-repositories", reply: .ok("[]"))
    fixture.runner.on("aws", "iam", "list-roles", reply: .ok("[]"))
    fixture.runner.on("aws", "rds", "describe-db-subnet-groups", reply: .ok("[]"))
    fixture.runner.on(
      "aws", "ec2", "describe-nat-gateways", reply: .ok(#"[["nat-0abc", "available"]]"#))
    let step = LeftoverScanStep()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(fixture.runner.unexpected.map(\.argv), [])
    return fixture.reporter.all.compactMap {
      if case .progress("leftovers", "scan", let message) = $0 { message } else { nil }
    }
  }

  /// An Elastic IP the tagging API lists and `describe-addresses` finds too is one address, with
  /// one public IPv4 charge (0.005 × 730 = 3.65); the NAT gateway's line is its hourly charge
  /// alone (0.059 × 730 = 43.07); its network interface costs nothing more.
  func testAnElasticIPIsCountedOnce() async throws {
    let lines = try await scan(
      tagged: [
        "\(prefix):elastic-ip/eipalloc-0abc", "\(prefix):natgateway/nat-0abc",
        "\(prefix):network-interface/eni-0abc",
      ],
      addresses: [["eipalloc-0abc", "3.35.0.1"]])
    let addresses = lines.filter { $0.contains("eipalloc-0abc") }
    XCTAssertEqual(
      addresses, ["  \(prefix):elastic-ip/eipalloc-0abc (3.35.0.1): about 3.65 USD a month"],
      "\(lines)")
    XCTAssertTrue(
      lines.contains("  \(prefix):natgateway/nat-0abc: about 43.07 USD a month"), "\(lines)")
    XCTAssertTrue(
      lines.contains("  \(prefix):network-interface/eni-0abc: little or no cost"), "\(lines)")
    XCTAssertTrue(
      lines.contains { $0.hasPrefix("total: about 46.72 USD a month") }, "\(lines)")
  }

  /// The final snapshot (tagged by copy-tags-to-snapshot) is listed as kept on purpose, with
  /// what its storage costs: 20 GB × 0.095 = 1.90 a month; nothing else is left.
  func testTheFinalSnapshotIsListedWithItsMonthlyCost() async throws {
    let lines = try await scan(tagged: [snapshot], addresses: [])
    XCTAssertEqual(
      lines.first, "nothing tagged runbook:deployment=unisync is left but what is kept on purpose")
    XCTAssertTrue(lines.contains("kept on purpose:"), "\(lines)")
    XCTAssertTrue(
      lines.contains(
        "  \(snapshot) (final snapshot): about 1.90 USD a month (snapshot storage, at most 20 GB); delete it when no longer needed: aws rds delete-db-snapshot --db-snapshot-identifier unisync-mysql-final-20261203170000"
      ), "\(lines)")
  }
}
