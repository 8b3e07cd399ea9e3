import Foundation
import RunbookState
import XCTest

/// The findings of a `drift --json` run, checked against docs/drift-schema.json.
func driftFindings(_ run: ToolRun, file: StaticString = #filePath, line: UInt = #line) throws
  -> [[String: Any]]
{
  let document = try XCTUnwrap(
    try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
    run.summary, file: file, line: line)
  let schema = try JSONSerialization.jsonObject(
    with: Data(contentsOf: repositoryRoot.appendingPathComponent("docs/drift-schema.json")))
  XCTAssertEqual(
    validate(document, against: schema as! [String: Any], at: "$"), [], file: file, line: line)
  return try XCTUnwrap(document["findings"] as? [[String: Any]], file: file, line: line)
}

/// The one finding of `action` that is not `extra` (nil, and a failure, when there is none or several).
func finding(
  _ findings: [[String: Any]], _ step: String, _ action: String, file: StaticString = #filePath,
  line: UInt = #line
) -> [String: Any]? {
  let found = findings.filter {
    $0["step"] as? String == step && $0["action"] as? String == action
      && $0["kind"] as? String != "extra"
  }
  XCTAssertEqual(found.count, 1, "\(step)/\(action) in \(findings)", file: file, line: line)
  return found.first
}

/// `runbook drift` beyond the VPC and subnets: route tables, routes and associations, security
/// groups and their rules, and resources tagged with the deployment that the checkpoint does
/// not know (`extra`). Each is changed by hand with the aws CLI after the tool made it.
final class DriftKindsTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  func testRoutesRulesAndAnExtraGroupAreFoundReadingOnly() async throws {
    let workspace = try Workspace()
    let first = try await workspace.run(["run", "network", "security", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    let clean = try await workspace.runLogged(["drift", "network", "security", "--json"])
    XCTAssertEqual(clean.run.status, 0, clean.run.summary)
    XCTAssertEqual(try driftFindings(clean.run).count, 0, clean.run.stdout)
    XCTAssertEqual(clean.calls.filter { $0["write"] as? Bool == true }.count, 0)
    // network: VPC, 4 subnets, 2 route tables, 2 default routes, 4 associations; security: 3
    // groups (each a look that it exists, then its rules) and 5 rules; the tagged resources.
    XCTAssertEqual(clean.calls.count, 13 + 3 * 2 + 5 + 1, "\(clean.calls.map { $0["argv"] ?? "" })")
    let tagged = clean.calls.filter {
      ($0["argv"] as? [String] ?? []).prefix(2) == ["resourcegroupstaggingapi", "get-resources"]
    }
    XCTAssertEqual(tagged.count, 1)

    // Behind the tool's back: the private route to the NAT gateway deleted, a rule added to the
    // ALB's group, the database's only rule revoked, and a group made with the tool's tags.
    let exports = try workspace.checkpoint().exports
    let lineage = try workspace.checkpoint().lineage
    let privateTable = try XCTUnwrap(exports["PRIVATE_RT_ID"])
    let albGroup = try XCTUnwrap(exports["ALB_SG"])
    let rdsGroup = try XCTUnwrap(exports["RDS_SG"])
    let ecsGroup = try XCTUnwrap(exports["ECS_SG"])
    _ = try await workspace.aws([
      "ec2", "delete-route", "--route-table-id", privateTable, "--destination-cidr-block",
      "0.0.0.0/0",
    ])
    _ = try await workspace.aws([
      "ec2", "authorize-security-group-ingress", "--group-id", albGroup, "--ip-permissions",
      #"[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"10.9.0.0/16"}]}]"#,
    ])
    _ = try await workspace.aws([
      "ec2", "revoke-security-group-ingress", "--group-id", rdsGroup, "--ip-permissions",
      #"[{"IpProtocol":"tcp","FromPort":3306,"ToPort":3306,"UserIdGroupPairs":[{"GroupId":"\#(ecsGroup)"}]}]"#,
    ])
    let extra = try await workspace.aws([
      "ec2", "create-security-group", "--group-name", "unisync-copy-sg", "--description", "copy",
      "--vpc-id", try XCTUnwrap(exports["VPC_ID"]), "--tag-specifications",
      #"[{"ResourceType":"security-group","Tags":[{"Key":"runbook:deployment","Value":"unisync"},{"Key":"runbook:lineage","Value":"\#(lineage)"},{"Key":"runbook:action","Value":"security/alb-sg"}]}]"#,
    ])
    let extraGroup = try XCTUnwrap((extra as? [String: Any])?["GroupId"] as? String)
    // Tagged with another lineage (another checkpoint's): not this deployment's extra.
    _ = try await workspace.aws([
      "ec2", "create-security-group", "--group-name", "unisync-other-sg", "--description", "other",
      "--vpc-id", try XCTUnwrap(exports["VPC_ID"]), "--tag-specifications",
      #"[{"ResourceType":"security-group","Tags":[{"Key":"runbook:deployment","Value":"unisync"},{"Key":"runbook:lineage","Value":"another"},{"Key":"runbook:action","Value":"security/alb-sg"}]}]"#,
    ])

    let before = workspace.stateSnapshot()
    let found = try await workspace.runLogged(["drift", "network", "security", "--json"])
    XCTAssertEqual(found.run.status, 4, found.run.summary)
    XCTAssertEqual(found.calls.filter { $0["write"] as? Bool == true }.count, 0)
    XCTAssertEqual(workspace.stateSnapshot(), before, "drift writes nothing")
    let findings = try driftFindings(found.run)
    XCTAssertEqual(findings.count, 5, "\(findings)")

    let route = try XCTUnwrap(finding(findings, "network", "private-default-route"))
    XCTAssertEqual(route["kind"] as? String, "missing")
    XCTAssertEqual(route["expected"] as? String, exports["NAT_ID"])
    XCTAssertEqual(route["converge"] as? String, "runbook run --refresh network")

    let alb = try XCTUnwrap(finding(findings, "security", "alb-sg"))
    XCTAssertEqual(alb["kind"] as? String, "changed")
    XCTAssertEqual(alb["expected"] as? String, "tcp 443 443 0.0.0.0/0; tcp 80 80 0.0.0.0/0")
    XCTAssertEqual(
      alb["actual"] as? String, "tcp 22 22 10.9.0.0/16; tcp 443 443 0.0.0.0/0; tcp 80 80 0.0.0.0/0")
    XCTAssertTrue(
      (alb["converge"] as? String ?? "").contains(
        "aws ec2 revoke-security-group-ingress --group-id \(albGroup) --security-group-rule-ids"),
      "\(alb)")

    let rds = try XCTUnwrap(finding(findings, "security", "rds-sg"))
    XCTAssertEqual(rds["kind"] as? String, "changed")
    XCTAssertEqual(rds["actual"] as? String, "none")
    XCTAssertEqual(rds["expected"] as? String, "tcp 3306 3306 \(ecsGroup)")
    let rule = try XCTUnwrap(finding(findings, "security", "rds-ingress-3306"))
    XCTAssertEqual(rule["kind"] as? String, "missing")

    let copy = try XCTUnwrap(findings.first { $0["kind"] as? String == "extra" }, "\(findings)")
    XCTAssertEqual(copy["step"] as? String, "security")
    XCTAssertTrue((copy["resource"] as? String ?? "").hasSuffix(extraGroup), "\(copy)")
    XCTAssertEqual(
      copy["converge"] as? String, "aws ec2 delete-security-group --group-id \(extraGroup)")

    // One line each in text; a step alone reads its own resources only.
    let text = try await workspace.run(["drift", "security"])
    XCTAssertEqual(text.status, 4, text.summary)
    for line in [
      "security/alb-sg \(albGroup)  changed: inbound rules (protocol, ports, source) is tcp 22 22 10.9.0.0/16; tcp 443 443 0.0.0.0/0; tcp 80 80 0.0.0.0/0, today's configuration says tcp 443 443 0.0.0.0/0; tcp 80 80 0.0.0.0/0  converge: runbook run --refresh security",
      "security/rds-ingress-3306 ",
      "  extra (tagged with this deployment and lineage; the checkpoint does not record it)  converge: aws ec2 delete-security-group --group-id \(extraGroup)\n",
    ] {
      XCTAssertTrue(text.stdout.contains(line), "'\(line)' missing:\n\(text.stdout)")
    }
    XCTAssertFalse(text.stdout.contains("network/"), text.stdout)
    XCTAssertEqual(text.stdout.split(separator: "\n").count, 5, text.stdout)
    let network = try await workspace.run(["drift", "network"])
    XCTAssertEqual(network.status, 4, network.summary)
    XCTAssertTrue(
      network.stdout.contains(
        "network/private-default-route  missing (today's configuration expects route 0.0.0.0/0 to \(exports["NAT_ID"] ?? "?"))  converge: runbook run --refresh network"
      ), network.stdout)

    // A refresh makes the route and the database's rule again; the rule added by hand is the
    // operator's to revoke (its finding says how): the refresh neither refuses nor removes it.
    let refresh = try await workspace.run(["run", "--refresh", "--yes", "network", "security"])
    XCTAssertEqual(refresh.status, 0, refresh.summary)
    let after = try await workspace.run(["drift", "network", "security", "--json"])
    XCTAssertEqual(after.status, 4, after.summary)
    let left = try driftFindings(after).map {
      "\($0["kind"] as? String ?? "") \($0["step"] as? String ?? "")/\($0["action"] as? String ?? "")"
    }
    XCTAssertTrue(left.contains("changed security/alb-sg"), "\(left)")
    XCTAssertEqual(
      left.filter { !$0.hasPrefix("extra ") && $0 != "changed security/alb-sg" }, [],
      "the route and the rule are back: \(left)")
  }
}
