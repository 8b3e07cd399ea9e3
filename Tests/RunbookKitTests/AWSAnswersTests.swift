import Foundation
import XCTest

@testable import UniSyncRunbook

/// The aws CLI answers verify and update read: what they take from real answers, and what a
/// missing list or an unreadable output counts as.
final class AWSAnswersTests: XCTestCase {
  func testADescribedServiceGivesItsCountsDeploymentsAndEvents() throws {
    let answer = ServicesAnswer.parse(
      #"""
      {"services": [{"serviceName": "api-gateway", "status": "ACTIVE", "runningCount": 1,
        "desiredCount": 2, "pendingCount": 1,
        "taskDefinition": "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-api-gateway:3",
        "deployments": [
          {"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS",
           "runningCount": 1, "desiredCount": 2, "pendingCount": 1, "failedTasks": 0},
          {"id": "ecs-svc/1", "status": "ACTIVE", "rolloutState": "COMPLETED"}],
        "events": [{"id": "e2", "message": "(service api-gateway) has started 1 tasks",
                    "createdAt": 1795768245.7},
                   {"id": "e1", "message": "older", "createdAt": "2026-11-27T08:30:12+00:00"}],
        "loadBalancers": [], "networkConfiguration": {}}],
       "failures": [{"arn": "arn:aws:ecs:r:1:service/c/missing", "reason": "MISSING"}]}
      """#)
    let service = try XCTUnwrap(answer.services.first)
    XCTAssertEqual(service.serviceName, "api-gateway")
    XCTAssertEqual(service.runningCount, 1)
    XCTAssertEqual(service.primary?.id, "ecs-svc/2")
    XCTAssertEqual(service.primary?.rolloutState, "IN_PROGRESS")
    XCTAssertEqual(service.deployments.count, 2)
    XCTAssertEqual(service.eventIDs, ["e1", "e2"])
    XCTAssertEqual(service.events.last?.createdAt?.shown, "2026-11-27T08:30:12+00:00")
    guard case .seconds(let seconds)? = service.events.first?.createdAt else {
      return XCTFail("aws CLI v1 prints epoch seconds")
    }
    XCTAssertEqual(seconds, 1_795_768_245.7)
    XCTAssertEqual(answer.failures.first?.reason, "MISSING")
  }

  func testMissingListsAreEmptyAndAnUnreadableOutputIsAnEmptyAnswer() {
    let bare = ServicesAnswer.parse(#"{"services": [{"serviceName": "x", "events": null}]}"#)
    XCTAssertEqual(bare.services.first?.deployments.count, 0)
    XCTAssertEqual(bare.services.first?.events.count, 0)
    XCTAssertEqual(bare.failures.count, 0)
    XCTAssertEqual(ServicesAnswer.parse("not json").services.count, 0)
    XCTAssertEqual(ServicesAnswer.parse("").services.count, 0)
    XCTAssertEqual(TargetHealthAnswer.parse("{}").descriptions.count, 0)
    XCTAssertEqual(LogEventsAnswer.parse(#"{"searchedLogStreams": []}"#).events.count, 0)
  }

  func testTargetsTasksAndLogEventsGiveWhatVerifyPrints() {
    let targets = TargetHealthAnswer.parse(
      #"""
      {"TargetHealthDescriptions": [{"Target": {"Id": "10.0.3.7", "Port": 8080},
        "HealthCheckPort": "8080",
        "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout",
                         "Description": "Request timed out"}}]}
      """#)
    XCTAssertEqual(targets.descriptions.first?.target?.id, "10.0.3.7")
    XCTAssertEqual(targets.descriptions.first?.target?.port, 8080)
    XCTAssertEqual(targets.descriptions.first?.health?.reason, "Target.Timeout")
    XCTAssertEqual(targets.descriptions.first?.health?.description, "Request timed out")

    let tasks = TasksAnswer.parse(
      #"""
      {"tasks": [{"taskArn": "arn:aws:ecs:r:1:task/c/abc", "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "api-gateway", "exitCode": 1, "reason": null}]}], "failures": []}
      """#)
    XCTAssertEqual(tasks.tasks.first?.containers.first?.exitCode, 1)
    XCTAssertNil(tasks.tasks.first?.containers.first?.reason)
    XCTAssertEqual(TaskListAnswer.parse(#"{"taskArns": ["a", "b"]}"#).taskArns, ["a", "b"])

    let events = LogEventsAnswer.parse(
      #"{"events": [{"logStreamName": "s", "timestamp": 1795768245123, "message": "started\n", "ingestionTime": 1, "eventId": "37"}]}"#
    )
    XCTAssertEqual(events.events.first?.timestamp, 1_795_768_245_123)
    XCTAssertEqual(events.events.first?.eventId, "37")
  }

  func testADescribedTaskDefinitionKeepsEveryField() throws {
    let text = #"""
      {"taskDefinition": {"family": "f", "cpu": "256", "containerDefinitions": [
        {"name": "c", "image": "i:1", "portMappings": [{"containerPort": 8080}],
         "linuxParameters": {"initProcessEnabled": true}, "ulimits": null}],
        "ephemeralStorage": {"sizeInGiB": 21}}, "tags": []}
      """#
    let definition = try XCTUnwrap(TaskDefinitionAnswer.parse(text).taskDefinition)
    let derived = try Rollout.derive(definition, container: "c", image: "i:2")
    XCTAssertEqual(
      JSONValue.object(derived).jsonText,
      #"{"containerDefinitions":[{"image":"i:2","linuxParameters":{"initProcessEnabled":true},"name":"c","portMappings":[{"containerPort":8080}],"ulimits":null}],"cpu":"256","ephemeralStorage":{"sizeInGiB":21},"family":"f"}"#
    )
  }
}
