import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Guide 10's pieces that need no AWS: the request it needs, its actions, the derived task
/// definition and the difference printed.
final class UpdateStepTests: XCTestCase {
  func deployment(tag: String? = "v2", services: [String] = [], rollback: Bool = false) throws
    -> Deployment
  {
    var deployment = try localDeployment()
    deployment.imageTag = tag
    deployment.request = RunRequest(services: services, rollback: rollback)
    return deployment
  }

  func testUpdateNeedsATagOrARollbackNotBoth() throws {
    let step = UpdateStep()
    XCTAssertNil(step.usageProblem(for: try deployment()))
    XCTAssertNil(step.usageProblem(for: try deployment(tag: nil, rollback: true)))
    XCTAssertEqual(
      step.usageProblem(for: try deployment(tag: nil)),
      "'update' needs --tag TAG (the image tag to build, push and deploy), or --rollback")
    XCTAssertNotNil(step.usageProblem(for: try deployment(rollback: true)))
    XCTAssertFalse(step.runsByDefault, "plain 'run' never updates")
    XCTAssertFalse(VerifyStep().runsByDefault)
  }

  func testActionsReuseTheECRBuildAndPushWithTheTagAndRunEveryTime() throws {
    let actions = UpdateStep().actions(for: try deployment(services: ["user-service"]))
    XCTAssertEqual(
      actions.map(\.name), ["login", "build-user-service", "push-user-service", "rollout"])
    XCTAssertTrue(actions.allSatisfy(\.repeatable))
    let build = try XCTUnwrap(actions.first { $0.name == "build-user-service" })
    XCTAssertEqual(
      build.command.description,
      "docker build --platform linux/amd64 --tag 127.0.0.1:5000/unisync/user-service:v2 "
        + packageRoot.appendingPathComponent("examples/services/user-service").standardized.path)
    let push = try XCTUnwrap(actions.first { $0.name == "push-user-service" })
    XCTAssertEqual(push.command.description, "docker push 127.0.0.1:5000/unisync/user-service:v2")
    XCTAssertNil(push.capture?.export, "the ecr step's IMAGE_DIGEST exports stay the ecr step's")
    XCTAssertEqual(
      Set(actions.last?.after ?? []), ["login", "build-user-service", "push-user-service"])
    XCTAssertEqual(actions.last?.exportReferences, ["CLUSTER_ARN"])
    // A rollback builds nothing.
    XCTAssertEqual(
      UpdateStep().actions(for: try deployment(tag: nil, rollback: true)).map(\.name), ["rollback"])
  }

  static let described: [String: JSONValue] = [
    "taskDefinitionArn":
      "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-user-service:4",
    "family": "unisync-user-service", "revision": 4, "status": "ACTIVE",
    "requiresAttributes": [["name": "ecs.capability.secrets.asm.environment-variables"]],
    "compatibilities": ["EC2", "FARGATE"], "registeredAt": 1_795_768_245.7,
    "registeredBy": "arn:aws:iam::1:root",
    "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "containerDefinitions": [
      [
        "name": "user-service", "image": "repo/unisync/user-service:v1", "essential": true,
        "environment": [["name": "SPRING_PROFILES_ACTIVE", "value": "prod"]],
        "portMappings": [["containerPort": 8081, "protocol": "tcp"]],
      ],
      ["name": "sidecar", "image": "repo/sidecar:3"],
    ],
  ]

  func testTheDerivedTaskDefinitionChangesOnlyTheImageOfTheServicesContainer() throws {
    let derived = try Rollout.derive(
      Self.described, container: "user-service", image: "repo/unisync/user-service:v2")
    for field in Rollout.readOnlyFields { XCTAssertNil(derived[field], field) }
    XCTAssertEqual(
      Set(derived.keys),
      [
        "family", "requiresCompatibilities", "networkMode", "cpu", "memory", "executionRoleArn",
        "containerDefinitions",
      ])
    XCTAssertEqual(
      Rollout.differences(Rollout.registrable(Self.described), derived),
      [
        "containerDefinitions[user-service].image: repo/unisync/user-service:v1 -> repo/unisync/user-service:v2"
      ])
    let containers = derived["containerDefinitions"]?.arrayValue ?? []
    XCTAssertEqual(
      containers.last?["image"]?.stringValue, "repo/sidecar:3", "other containers are left alone")
    // The same image: nothing differs, so nothing is registered.
    let same = try Rollout.derive(
      Self.described, container: "user-service", image: "repo/unisync/user-service:v1")
    XCTAssertEqual(Rollout.differences(Rollout.registrable(Self.described), same), [])
    XCTAssertThrowsError(
      try Rollout.derive(Self.described, container: "course-service", image: "x")
    ) { error in
      XCTAssertEqual(
        (error as? ProcedureFailure)?.reason,
        "the task definition has no container named course-service (containers: user-service, sidecar)"
      )
    }
  }

  func testDifferencesNameTheFieldsThatChanged() {
    let old: [String: JSONValue] = [
      "cpu": "256", "containerDefinitions": [["name": "a", "image": "x:1", "cpu": 0]],
      "volumes": [],
    ]
    let new: [String: JSONValue] = [
      "cpu": "512", "containerDefinitions": [["name": "a", "image": "x:2", "cpu": 0]],
      "pidMode": "task",
    ]
    XCTAssertEqual(
      Rollout.differences(old, new),
      [
        "containerDefinitions[a].image: x:1 -> x:2", "cpu: 256 -> 512", "pidMode: (none) -> task",
        "volumes: [] -> (none)",
      ])
  }

  func testTheSummaryTableHasALinePerService() {
    let table = Rollout.table(
      ["api-gateway", "user-service"],
      [
        .updated(
          taskDefinition: "arn:aws:ecs:r:1:task-definition/unisync-api-gateway:3",
          deployment: "ecs-svc/1"),
        .rolledBack(
          taskDefinition: "arn:aws:ecs:r:1:task-definition/unisync-user-service:2",
          failed: "ecs-svc/2", reason: "tasks failed to start"),
      ])
    XCTAssertEqual(
      table.split(separator: "\n").map {
        $0.replacingOccurrences(of: #" +"#, with: " ", options: .regularExpression)
      },
      [
        "service result task definition deployment",
        "api-gateway updated unisync-api-gateway:3 ecs-svc/1 COMPLETED",
        "user-service rolled back unisync-user-service:2 ecs-svc/2 failed: tasks failed to start",
      ])
  }
}
