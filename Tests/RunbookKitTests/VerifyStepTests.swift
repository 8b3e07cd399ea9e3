import Foundation
import XCTest

@testable import RunbookKit

/// Guide 9's pieces that need no AWS: what it plans to run, and the diagnosis of common causes.
final class VerifyStepTests: XCTestCase {
  func testThePlanNamesEveryReadAndTheProbe() throws {
    var deployment = try localDeployment()
    deployment.healthCheckUrl = nil
    let action = try XCTUnwrap(VerifyStep().actions(for: deployment).first)
    XCTAssertTrue(action.repeatable)
    XCTAssertEqual(action.effect, .read)
    XCTAssertEqual(Set(action.exportReferences), ["ALB_ARN", "TG_ARN", "CLUSTER_ARN"])
    let outline = try XCTUnwrap(action.procedure?.outline).map { line -> String in
      switch line {
      case .command(let command): command.description
      case .note(let note): note.description
      }
    }
    XCTAssertEqual(
      outline.first,
      "aws elbv2 describe-load-balancers --load-balancer-arns <ALB_ARN> --query 'LoadBalancers[0].[DNSName,State.Code]' --output text"
    )
    XCTAssertTrue(
      outline.contains("aws elbv2 describe-target-health --target-group-arn <TG_ARN> --output json")
    )
    XCTAssertTrue(
      outline.contains { $0.hasPrefix("GET http://<ALB_DNS>/actuator/health with URLSession") },
      "\(outline)")
    for service in ["api-gateway", "user-service", "course-service", "schedule-service"] {
      XCTAssertTrue(
        outline.contains(
          "aws logs filter-log-events --log-group-name /ecs/unisync-\(service) --start-time <START_TIME_MS> --output json"
        ), service)
    }
    // Only the requested services.
    deployment.request = RunRequest(services: ["user-service"])
    let one = try XCTUnwrap(VerifyStep().actions(for: deployment).first?.procedure?.commands)
    XCTAssertTrue(one.contains(VerifyStep.describeServices(["user-service"])))
    XCTAssertFalse(one.contains { $0.description.contains("unisync-api-gateway") })
  }

  func testTheDiagnosisNamesTheCauseAndTheFix() {
    let advice = VerifyStep.diagnose([
      "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed",
      "Target.Timeout",
    ])
    XCTAssertEqual(advice.count, 2)
    XCTAssertTrue(
      advice[0].hasPrefix("ResourceInitializationError: the task could not fetch its secrets"),
      advice[0])
    XCTAssertTrue(advice[0].contains("NAT gateway"))
    XCTAssertTrue(
      advice[1].hasPrefix(
        "Target.Timeout: the load balancer gets no answer from the task: ECS_SG must admit ALB_SG"),
      advice[1])
    XCTAssertEqual(
      VerifyStep.diagnose(["CannotPullContainerError: pull image manifest has been retried"]).count,
      1)
    XCTAssertEqual(VerifyStep.diagnose(["all good"]), [])
  }

  func testOnlyLoopbackHostsCountAsThisMachine() {
    for host in ["127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"] {
      XCTAssertTrue(HealthProbe.isLoopback(host), host)
    }
    for host in ["unisync-alb-1.ap-northeast-2.elb.amazonaws.com", "10.0.0.1", "128.0.0.1", ""] {
      XCTAssertFalse(HealthProbe.isLoopback(host), host)
    }
    XCTAssertFalse(HealthProbe.isLoopback(nil))
  }
}
