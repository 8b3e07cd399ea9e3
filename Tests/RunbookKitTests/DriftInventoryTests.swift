import Foundation
import XCTest

@testable import RunbookEngine
@testable import UniSyncRunbook

/// How `drift` tells a tagged resource the checkpoint records from an extra one, what it says
/// deletes an extra one, and how it normalises what it compares.
final class DriftInventoryTests: XCTestCase {
  let account = "arn:aws:ec2:ap-northeast-2:123456789012"

  func testAResourceIsRecordedByItsARNOrItsLastPart() {
    let recorded: Set<String> = [
      "vpc-0abc", "unisync-db-subnet-group",
      "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-api-gateway:2",
    ]
    XCTAssertTrue(Deployment.isRecorded("\(account):vpc/vpc-0abc", recorded))
    XCTAssertFalse(Deployment.isRecorded("\(account):vpc/vpc-0abcd", recorded))
    XCTAssertTrue(
      Deployment.isRecorded(
        "arn:aws:rds:ap-northeast-2:123456789012:subgrp:unisync-db-subnet-group", recorded))
    // Another revision of a recorded family is the same resource; another family is not.
    XCTAssertTrue(
      Deployment.isRecorded(
        "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-api-gateway:1", recorded))
    XCTAssertFalse(
      Deployment.isRecorded(
        "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-user-service:1", recorded))
  }

  func testTheDeletionOfAnExtraResourceIsNamedByItsARN() {
    XCTAssertEqual(
      Deployment.deletion("\(account):security-group/sg-1"),
      "aws ec2 delete-security-group --group-id sg-1")
    XCTAssertEqual(
      Deployment.deletion("\(account):subnet/subnet-1"),
      "aws ec2 delete-subnet --subnet-id subnet-1")
    XCTAssertEqual(
      Deployment.deletion("arn:aws:rds:ap-northeast-2:123456789012:db:unisync-mysql"),
      "aws rds delete-db-instance --db-instance-identifier unisync-mysql --final-db-snapshot-identifier unisync-mysql-final"
    )
    XCTAssertEqual(
      Deployment.deletion(
        "arn:aws:ecs:ap-northeast-2:123456789012:service/unisync-cluster/user-service"),
      "aws ecs delete-service --cluster unisync-cluster --service user-service --force")
    XCTAssertEqual(
      Deployment.deletion("arn:aws:ecr:ap-northeast-2:123456789012:repository/unisync/api-gateway"),
      "aws ecr delete-repository --repository-name unisync/api-gateway --force")
    XCTAssertEqual(
      Deployment.deletion("arn:aws:logs:ap-northeast-2:123456789012:log-group:/ecs/unisync-x:*"),
      "aws logs delete-log-group --log-group-name /ecs/unisync-x")
    XCTAssertEqual(
      Deployment.deletion("arn:aws:sns:ap-northeast-2:123456789012:topic"),
      "delete arn:aws:sns:ap-northeast-2:123456789012:topic in its service's console")
  }

  func testRowsAreComparedSortedAndARedrivePolicyWhateverItsQuoting() {
    XCTAssertEqual(
      Engine<Deployment>.rows("tcp\t80\t80\t0.0.0.0/0\ntcp\t443\t443\t0.0.0.0/0\n\n"),
      ["tcp 443 443 0.0.0.0/0", "tcp 80 80 0.0.0.0/0"])
    let expression = Deployment.redriveExtract
    XCTAssertEqual(Engine<Deployment>.extracted(expression, in: "30\t345600\tNone\n"), "30 345600")
    XCTAssertEqual(
      Engine<Deployment>.extracted(
        expression,
        in: "30\t345600\t"
          + #"{"maxReceiveCount":"5", "deadLetterTargetArn":"arn:aws:sqs:r:1:dlq"}"#),
      "30 345600 arn:aws:sqs:r:1:dlq 5")
    XCTAssertEqual(
      Engine<Deployment>.extracted(
        expression,
        in: "30\t345600\t" + #"{"deadLetterTargetArn":"arn:aws:sqs:r:1:dlq","maxReceiveCount":9}"#),
      "30 345600 arn:aws:sqs:r:1:dlq 9")
  }
}
