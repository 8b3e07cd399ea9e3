import Foundation
import RunbookKit
import XCTest

/// Day-two operations (guide 9, guide 10 and destroy) against the real aws CLI, the emulator, a
/// Docker engine and a registry, on one deployment of every step: a deployment costs minutes, and
/// destroy is the natural end of it. The checks live beside their steps: `checkVerify` in
/// VerifyStepTests.swift, `checkUpdate` in UpdateStepTests.swift, `checkDestroy` in DestroyTests.swift.
final class DayTwoTests: XCTestCase {
  func testVerifyThenUpdateThenDestroyOneDeployment() async throws {
    var adoptedVPC = ""
    let workspace = try await deployedWorkspace(
      ["network", "security", "rds", "secrets", "ecr", "ecs", "lambda", "sqs", "--adopt"],
      configure: { config in
        config["operations"] = [
          "healthCheckTimeoutSeconds": 3, "healthCheckIntervalSeconds": 1, "logLines": 5,
          "followIntervalSeconds": 1, "deploymentPollSeconds": 1, "dependencyRetrySeconds": 20,
        ]
      },
      before: { workspace in
        // Made by hand, without the tool's tags: a VPC of the configuration's name and CIDR
        // (taken over with --adopt), and the Lambda execution role.
        let vpc = try await workspace.aws(
          [
            "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--tag-specifications",
            #"[{"ResourceType":"vpc","Tags":[{"Key":"Name","Value":"unisync-vpc"}]}]"#,
          ])
        adoptedVPC = ((vpc as? [String: Any])?["Vpc"] as? [String: Any])?["VpcId"] as? String ?? ""
        _ = try await workspace.aws(
          [
            "iam", "create-role", "--role-name", Self.lambdaRole, "--assume-role-policy-document",
            #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
          ])
      })
    try await checkVerify(workspace)
    try await checkUpdate(workspace)
    try await checkDestroy(workspace, adoptedVPC: adoptedVPC)
  }
}
