import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// The whole runbook against the real aws CLI, the emulator, a Docker engine and a registry, on
/// one deployment of every step: a deployment costs minutes, so one serves every suite that needs
/// one. In order: the deployment itself, interrupted again and again (SIGKILL and SIGINT after
/// sampled writes, a kill in the NAT and RDS waits) under 30 % throttling, with configuration
/// values carrying shell metacharacters (`checkInterruptedDeployment`, CrashSuiteTests.swift);
/// verify (guide 9, `checkVerify` in VerifyStepTests.swift); update (guide 10, `checkUpdate` in
/// UpdateStepTests.swift); destroy, interrupted at sampled writes (`checkDestroy` in
/// DestroyTests.swift); and at the end, that no secret value went anywhere but to AWS
/// (`checkNoSecretAnywhere`, SecretLeakTests.swift).
final class DayTwoTests: XCTestCase {
  func testVerifyThenUpdateThenDestroyOneDeployment() async throws {
    let registry = try DockerEnvironment.registry()
    try Emulator.reset()
    // The whole runbook (its crash chain and the destroy chain too) under the strict layer,
    // whatever RUNBOOK_AWS_STRICT says: AWS's own rules, not moto's leniency.
    let strict = try StrictLayer.forThisProcess()
    try strict.reset()
    try strict.configure(["all"], frozen: false)
    defer { try? strict.reset() }
    // Values of its own, so that finding one anywhere means this run put it there.
    let unique = UUID().uuidString.prefix(8).lowercased()
    let supplied = [
      "UNISYNC_CANVAS_API_TOKEN": "canvas-token-\(unique)-x7Qp",
      "UNISYNC_COGNITO_USER_POOL_ID": "ap-northeast-2_pool\(unique)",
      "UNISYNC_COGNITO_CLIENT_ID": "client-\(unique)-k2Zr",
    ]
    let hostile = HostileValues()
    let workspace = try Workspace(strict: true) { config in
      config["registry"] = registry
      config["operations"] = [
        "healthCheckTimeoutSeconds": 3, "healthCheckIntervalSeconds": 1, "logLines": 5,
        "followIntervalSeconds": 1, "deploymentPollSeconds": 1, "dependencyRetrySeconds": 20,
        "pausePercent": Workspace.testPausePercent,
      ]
      hostile.apply(to: &config)
    }
    // Registry logins of this workspace stay in it; every aws and docker call is logged.
    workspace.environment["DOCKER_CONFIG"] =
      workspace.directory.appendingPathComponent("docker-config").path
    workspace.environment["RUNBOOK_AWS_LOG"] =
      workspace.directory.appendingPathComponent("aws.log").path
    workspace.environment["RUNBOOK_DOCKER_LOG"] =
      workspace.directory.appendingPathComponent("docker.log").path
    // What the runs leave in their temporary folder is scanned for secrets at the end.
    _ = try workspace.privateTemporaryDirectory()

    // Made by hand, without the tool's tags: a VPC of the configuration's name and CIDR (taken
    // over with --adopt), and the Lambda execution role.
    let vpc = try await workspace.aws(
      [
        "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--tag-specifications",
        #"[{"ResourceType":"vpc","Tags":[{"Key":"Name","Value":"unisync-vpc"}]}]"#,
      ])
    let adoptedVPC = ((vpc as? [String: Any])?["Vpc"] as? [String: Any])?["VpcId"] as? String ?? ""
    _ = try await workspace.aws(
      [
        "iam", "create-role", "--role-name", Self.lambdaRole, "--assume-role-policy-document",
        #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
      ])

    // (The time of each part goes to the test output: docs/reliability.md quotes it.)
    var clock = Date()
    func lap(_ part: String) {
      report("day two: \(part) took \(Int(Date().timeIntervalSince(clock))) s")
      clock = Date()
    }
    try await checkInterruptedDeployment(workspace, supplied: supplied, hostile: hostile)
    lap("the interrupted deployment, its inventory and the rerun")
    try await checkVerify(workspace)
    lap("verify")
    try await checkUpdate(workspace)
    lap("update")
    let secrets = try await secretValues(workspace, supplied: supplied)
    try await checkDestroy(workspace, adoptedVPC: adoptedVPC)
    lap("the interrupted destroy")
    try await checkNoSecretAnywhere(workspace, secrets: secrets)
    lap("the secret scan")
  }
}
