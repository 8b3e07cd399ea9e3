import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Guide 2.2: the commands the security step runs, without running them.
final class SecurityStepArgvTests: XCTestCase {
  func testActionsFollowTheGuideAndExportTheGroups() throws {
    let deployment = try configuredDeployment()
    let step = SecurityGroupsStep()
    XCTAssertEqual(
      step.actions(for: deployment).map(\.name),
      [
        "alb-sg", "alb-ingress-80", "alb-ingress-443", "ecs-sg", "ecs-ingress-8080-8083",
        "ecs-self-ingress-8080-8083", "rds-sg", "rds-ingress-3306",
      ])
    XCTAssertEqual(step.requiredExports(for: deployment), ["VPC_ID"])
    XCTAssertEqual(step.producedExports(for: deployment), ["ALB_SG", "ECS_SG", "RDS_SG"])
    XCTAssertTrue(step.actions(for: deployment).allSatisfy(\.isWrite))
  }

  func testGroupIsTaggedAtCreationAndFoundByTagsOrByNameInTheVPC() throws {
    let deployment = try configuredDeployment()
    let action = try XCTUnwrap(
      SecurityGroupsStep().actions(for: deployment).first { $0.name == "alb-sg" })
    let values = ["VPC_ID": "vpc-1", ContextValue.lineage: "L"]
    XCTAssertEqual(
      action.command.arguments.prefix(8).map { render($0, with: values) },
      [
        "ec2", "create-security-group", "--group-name", "unisync-alb-sg", "--description",
        "Security group for UniSync ALB", "--vpc-id", "vpc-1",
      ])
    let tags = try jsonArgument(action.command, after: "--tag-specifications", with: values)
    XCTAssertEqual(
      tags as? NSArray,
      [
        [
          "ResourceType": "security-group",
          "Tags": [
            ["Key": "Name", "Value": "unisync-alb-sg"],
            ["Key": "runbook:deployment", "Value": "unisync"],
            ["Key": "runbook:lineage", "Value": "L"],
            ["Key": "runbook:action", "Value": "security/alb-sg"],
          ],
        ]
      ] as NSArray)
    let owned = try jsonArgument(action.lookup?.command, after: "--filters", with: values)
    XCTAssertEqual(
      owned as? NSArray,
      [
        ["Name": "tag:runbook:deployment", "Values": ["unisync"]],
        ["Name": "tag:runbook:action", "Values": ["security/alb-sg"]],
        ["Name": "vpc-id", "Values": ["vpc-1"]],
      ] as NSArray)
    let byName = try jsonArgument(action.adoptLookup?.command, after: "--filters", with: values)
    XCTAssertEqual(
      byName as? NSArray,
      [
        ["Name": "group-name", "Values": ["unisync-alb-sg"]],
        ["Name": "vpc-id", "Values": ["vpc-1"]],
      ] as NSArray)
    XCTAssertEqual(action.alreadyDoneErrors, ["InvalidGroup.Duplicate"])
    XCTAssertEqual(action.capture?.export, "ALB_SG")
  }

  func testECSRuleAdmitsTheConfiguredRangeFromTheALBGroupOnly() throws {
    let deployment = try configuredDeployment()
    let action = try XCTUnwrap(
      SecurityGroupsStep().actions(for: deployment).first { $0.name == "ecs-ingress-8080-8083" })
    let values = ["ECS_SG": "sg-ecs", "ALB_SG": "sg-alb"]
    XCTAssertEqual(
      action.command.arguments.prefix(4).map { render($0, with: values) },
      ["ec2", "authorize-security-group-ingress", "--group-id", "sg-ecs"])
    let permissions = try jsonArgument(action.command, after: "--ip-permissions", with: values)
    XCTAssertEqual(
      permissions as? NSArray,
      [
        [
          "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8083,
          "UserIdGroupPairs": [["GroupId": "sg-alb"]],
        ]
      ]
        as NSArray)
    XCTAssertEqual(action.exportReferences, ["ECS_SG", "ALB_SG"])
    XCTAssertEqual(action.alreadyDoneErrors, ["InvalidPermission.Duplicate"])
    // The lookup finds exactly this rule: same ports, from the ALB group.
    let query = render(
      try XCTUnwrap(action.lookup?.command.argument(after: "--query")), with: values)
    XCTAssertTrue(query.contains("FromPort==`8080` && ToPort==`8083`"), query)
    XCTAssertTrue(query.contains("ReferencedGroupInfo.GroupId=='sg-alb'"), query)
    let filters = try jsonArgument(action.lookup?.command, after: "--filters", with: values)
    XCTAssertEqual(filters as? NSArray, [["Name": "group-id", "Values": ["sg-ecs"]]] as NSArray)
  }

  func testPortsComeFromTheConfiguration() throws {
    var deployment = try configuredDeployment()
    deployment.securityGroups.albPorts = [8443]
    deployment.securityGroups.rdsPort = 5432
    let actions = SecurityGroupsStep().actions(for: deployment)
    XCTAssertEqual(
      actions.filter { $0.name.contains("ingress") }.map(\.name),
      [
        "alb-ingress-8443", "ecs-ingress-8080-8083", "ecs-self-ingress-8080-8083",
        "rds-ingress-5432",
      ])
    let https = try XCTUnwrap(actions.first { $0.name == "alb-ingress-8443" })
    let permissions = try jsonArgument(https.command, after: "--ip-permissions", with: [:])
    XCTAssertEqual(
      permissions as? NSArray,
      [
        [
          "IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443,
          "IpRanges": [["CidrIp": "0.0.0.0/0"]],
        ]
      ] as NSArray)
  }
}
