import Foundation
import RunbookState
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `plan --refresh` and `run --refresh`: a resource deleted by hand is made anew, with what uses
/// it; a resource that cannot be changed in place is refused; a kill during a refresh resumes
/// without a duplicate.
final class RefreshTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// The subnets of the VPC that carry this action's tag (`network/subnet-private-2c`).
  private func subnets(_ workspace: Workspace, action: String) async throws -> [String] {
    let reply = try await workspace.aws([
      "ec2", "describe-subnets", "--filters", "Name=tag:runbook:action,Values=\(action)",
    ])
    let items = (reply as? [String: Any])?["Subnets"] as? [[String: Any]] ?? []
    return items.compactMap { $0["SubnetId"] as? String }
  }

  /// The writes of `calls`; with `accepted`, only those AWS accepted (a write refused while EC2
  /// does not see a new subnet yet, `InvalidSubnetID.NotFound`, is retried and is no write).
  private func writes(_ calls: [[String: Any]], accepted: Bool = false) -> [String] {
    calls.filter { $0["write"] as? Bool == true && (!accepted || $0["exit"] as? Int == 0) }.map {
      (($0["argv"] as? [String]) ?? []).prefix(2).joined(separator: " ")
    }
  }

  func testASubnetDeletedByHandIsPreviewedThenMadeAnewWithItsAssociationOnce() async throws {
    let workspace = try Workspace()
    let first = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    let before = try workspace.checkpoint()
    let old = try XCTUnwrap(before.exports["SUBNET_PRIVATE_2C"])
    let oldAssociation = try XCTUnwrap(before.actions["network/associate-private-2c"]?.value)
    _ = try await workspace.aws(["ec2", "delete-subnet", "--subnet-id", old])

    // The preview reads, writes nothing, and names the subnet and what uses it.
    let snapshot = workspace.stateSnapshot()
    let plan = try await workspace.runLogged(["plan", "--refresh", "network"])
    XCTAssertEqual(plan.run.status, 0, plan.run.summary)
    XCTAssertEqual(writes(plan.calls), [], "plan --refresh writes nothing")
    XCTAssertGreaterThan(plan.calls.count, 0, "it reads back what the checkpoint records")
    XCTAssertEqual(workspace.stateSnapshot(), snapshot, "plan --refresh changes no state file")
    for line in [
      "refresh: 2 done action(s) will run again ('runbook run --refresh network'):",
      "  network/subnet-private-2c (\(old)): missing: AWS no longer has it (cidr and zone 10.0.12.0/24 ap-northeast-2c)",
      "  network/associate-private-2c (\(oldAssociation)): uses SUBNET_PRIVATE_2C, which network/subnet-private-2c makes anew",
      "! subnet-private-2c: create subnet",
    ] {
      XCTAssertTrue(plan.run.stdout.contains(line), "'\(line)' missing:\n\(plan.run.stdout)")
    }
    XCTAssertEqual(
      plan.run.stdout.components(separatedBy: "(runs again)").count - 1, 2, plan.run.stdout)

    // The refresh makes exactly the subnet and its association again.
    let run = try await workspace.runLogged(["run", "--refresh", "--yes", "network"])
    XCTAssertEqual(run.run.status, 0, run.run.summary)
    XCTAssertEqual(
      writes(run.calls, accepted: true).sorted(),
      ["ec2 associate-route-table", "ec2 create-subnet"].sorted(),
      "\(run.calls)")
    let after = try workspace.checkpoint()
    let made = try await subnets(workspace, action: "network/subnet-private-2c")
    XCTAssertEqual(made.count, 1, "one subnet: \(made)")
    XCTAssertEqual(after.exports["SUBNET_PRIVATE_2C"], made.first)
    XCTAssertNotEqual(made.first, old)
    XCTAssertEqual(after.actions["network/subnet-private-2c"]?.outcome, .created)
    let association = try XCTUnwrap(after.actions["network/associate-private-2c"]?.value)
    XCTAssertNotEqual(association, oldAssociation)
    XCTAssertTrue(run.run.stdout.contains("refresh: 2 done action(s) ran again:"), run.run.stdout)
    // The journal says why each was reset.
    let journal = try Journal(path: workspace.stateDirectory + "/journal.jsonl").entries()
    let resets = journal.filter { $0.event == .reset }
    XCTAssertEqual(
      resets.map(\.action).sorted(),
      ["network/associate-private-2c", "network/subnet-private-2c"])
    XCTAssertTrue(
      resets.first { $0.action == "network/subnet-private-2c" }?.reason?.hasPrefix("missing: ")
        == true, "\(resets)")
    // The history: the refresh created the two again (counted after its resets).
    let history = try await workspace.run(["history", "--json"])
    let runs =
      (try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])?[
        "runs"] as? [[String: Any]] ?? []
    let created = (runs.first?["changes"] as? [[String: Any]] ?? []).filter {
      $0["outcome"] as? String == "created"
    }.compactMap { $0["action"] as? String }
    XCTAssertEqual(
      created.sorted(), ["network/associate-private-2c", "network/subnet-private-2c"],
      history.stdout)
    // Everything the other actions recorded is as before.
    for (key, record) in before.actions
    where key != "network/subnet-private-2c" && key != "network/associate-private-2c" {
      XCTAssertEqual(after.actions[key]?.value, record.value, key)
    }

    // Converged: a second refresh runs nothing, and neither does a plain run.
    let again = try await workspace.runLogged(["run", "--refresh", "--yes", "network"])
    XCTAssertEqual(again.run.status, 0, again.run.summary)
    XCTAssertEqual(writes(again.calls), [])
    XCTAssertTrue(again.run.stdout.contains("refresh: nothing to run again"), again.run.stdout)
    XCTAssertTrue(again.run.stdout.contains("nothing to do"), again.run.stdout)
    try await assertRerunCallsNothing(workspace, step: "network")
  }

  func testAChangedVPCCidrIsRefusedAndNothingIsWritten() async throws {
    let workspace = try Workspace()
    let first = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    try setVPCCidr(workspace, "10.0.0.0/17")
    let snapshot = workspace.stateSnapshot()

    let plan = try await workspace.runLogged(["plan", "--refresh", "network"])
    XCTAssertEqual(plan.run.status, 5, plan.run.summary)
    XCTAssertEqual(writes(plan.calls), [])
    XCTAssertTrue(plan.run.stdout.contains("refresh refused"), plan.run.stdout)

    let run = try await workspace.runLogged(["run", "--refresh", "--yes", "network"])
    XCTAssertEqual(run.run.status, 5, run.run.summary)
    XCTAssertEqual(writes(run.calls), [], "nothing is written")
    XCTAssertEqual(workspace.stateSnapshot(), snapshot, "no state file changed")
    for text in [
      "error: refresh refused",
      "network/vpc: cidr is 10.0.0.0/16 on AWS, the configuration says 10.0.0.0/17",
      "'runbook destroy network', then 'runbook run network'",
    ] {
      XCTAssertTrue(run.run.stderr.contains(text), "'\(text)' missing:\n\(run.run.stderr)")
    }
    XCTAssertFalse(run.run.stdout.contains("created"), run.run.stdout)
  }

  func testAKillDuringARefreshResumesToOneSubnet() async throws {
    let workspace = try Workspace()
    let first = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    let old = try XCTUnwrap(try workspace.checkpoint().exports["SUBNET_PRIVATE_2C"])
    _ = try await workspace.aws(["ec2", "delete-subnet", "--subnet-id", old])

    // Killed right after each write (the create, then the association), before its record.
    let chain = try await workspace.runKilledAfterEveryWrite([
      "run", "--refresh", "network", "--yes",
    ])
    XCTAssertEqual(chain.last?.status, 0, chain.last?.summary ?? "no run finished")
    XCTAssertEqual(chain.kills, 2, "the subnet's create and its association, each killed once")
    let made = try await subnets(workspace, action: "network/subnet-private-2c")
    XCTAssertEqual(made.count, 1, "no duplicate subnet: \(made)")
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.exports["SUBNET_PRIVATE_2C"], made.first)
    XCTAssertEqual(checkpoint.actions["network/subnet-private-2c"]?.outcome, .recovered)
    let tables = try await workspace.aws([
      "ec2", "describe-route-tables", "--filters",
      "Name=association.subnet-id,Values=\(made.first ?? "?")",
    ])
    let associations =
      ((tables as? [String: Any])?["RouteTables"] as? [[String: Any]] ?? []).flatMap {
        ($0["Associations"] as? [[String: Any]] ?? []).filter {
          $0["SubnetId"] as? String == made.first
        }
      }
    XCTAssertEqual(associations.count, 1, "\(associations)")
    XCTAssertEqual(
      checkpoint.actions["network/associate-private-2c"]?.value,
      associations.first?["RouteTableAssociationId"] as? String)
    try await assertRerunCallsNothing(workspace, step: "network")
  }
}
