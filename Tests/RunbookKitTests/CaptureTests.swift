import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

/// Which outputs count as captured values, and reading AWS error codes from the CLI's stderr.
final class CaptureTests: XCTestCase {
  func testAcceptsAValueMatchingThePattern() {
    let capture = Capture(export: "VPC_ID", pattern: #"^vpc-[0-9a-f]+$"#)
    XCTAssertTrue(capture.accepts("vpc-0a1b2c"))
    XCTAssertFalse(capture.accepts("subnet-0a1b2c"))
    XCTAssertFalse(capture.accepts("vpc-0a1b2c extra"))
    XCTAssertFalse(capture.accepts("xvpc-0a1"))
  }

  func testRejectsNoneAndEmpty() {
    XCTAssertFalse(Capture(export: nil, pattern: ".*").accepts("None"))
    XCTAssertFalse(Capture(export: nil, pattern: ".*").accepts(""))
    XCTAssertFalse(Capture(export: nil, pattern: "^None$").accepts("None"))
    XCTAssertTrue(Capture(export: nil, pattern: ".*").accepts("Nonetheless"))
  }

  func testRejectsTwoIdsOnSeparateLines() {
    // A lookup that finds two resources prints both; that is not one id.
    let capture = Capture(export: "VPC_ID", pattern: #"^vpc-[0-9a-f]+$"#)
    XCTAssertFalse(capture.accepts("vpc-1\nvpc-2"))
    XCTAssertFalse(capture.accepts("vpc-1\tvpc-2"))
  }

  // MARK: - awsErrorCode (texts measured with aws-cli 1.45 against moto)

  func testReadsTheCodeOfRealErrorTexts() {
    let texts: [(String, String)] = [
      (
        "An error occurred (InvalidPermission.Duplicate) when calling the AuthorizeSecurityGroupIngress operation: The specified rule already exists",
        "InvalidPermission.Duplicate"
      ),
      (
        "An error occurred (InvalidSubnet.Conflict) when calling the CreateSubnet operation: The CIDR '10.0.1.0/24' conflicts with another subnet",
        "InvalidSubnet.Conflict"
      ),
      (
        "An error occurred (Resource.AlreadyAssociated) when calling the AttachInternetGateway operation: Resource igw-… is already associated.",
        "Resource.AlreadyAssociated"
      ),
      (
        "An error occurred (DBInstanceAlreadyExists) when calling the CreateDBInstance operation: DB instance already exists",
        "DBInstanceAlreadyExists"
      ),
      (
        "An error occurred (ResourceExistsException) when calling the CreateSecret operation: The operation failed because the secret unisync/encryption-key already exists.",
        "ResourceExistsException"
      ),
      (
        "An error occurred (RepositoryAlreadyExistsException) when calling the CreateRepository operation: The repository with name 'unisync/api-gateway' already exists in the registry with id '123456789012'",
        "RepositoryAlreadyExistsException"
      ),
      (
        "An error occurred (EntityAlreadyExists) when calling the CreateRole operation: Role with name ecsTaskExecutionRole already exists.",
        "EntityAlreadyExists"
      ),
      (
        "An error occurred (NoSuchEntity) when calling the AttachRolePolicy operation: Policy arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy does not exist or is not attachable.",
        "NoSuchEntity"
      ),
      (
        "An error occurred (DuplicateTargetGroupName) when calling the CreateTargetGroup operation: A target group with the specified name already exists.",
        "DuplicateTargetGroupName"
      ),
      (
        "An error occurred (QueueAlreadyExists) when calling the CreateQueue operation: The specified queue already exists.",
        "QueueAlreadyExists"
      ),
    ]
    for (text, code) in texts {
      XCTAssertEqual(awsErrorCode(in: text), code, text)
      // As the CLI prints it: a blank line first, a newline after.
      XCTAssertEqual(awsErrorCode(in: "\n" + text + "\n"), code, text)
    }
  }

  func testTextsWithoutACodeGiveNil() {
    XCTAssertNil(
      awsErrorCode(
        in:
          "Could not connect to the endpoint URL: \"https://ap-northeast-2.queue.amazonaws.com/\""))
    XCTAssertNil(
      awsErrorCode(in: "aws: error: argument operation: Invalid choice, valid choices are:"))
    XCTAssertNil(awsErrorCode(in: "Waiter ServicesStable failed: Max attempts exceeded"))
    XCTAssertNil(awsErrorCode(in: ""))
    XCTAssertNil(awsErrorCode(in: "An error occurred (unterminated"))
  }

  func testThrottlingCodesAreRetryableAndDuplicatesAreNot() {
    XCTAssertTrue(throttlingErrorCodes.contains("Throttling"))
    XCTAssertTrue(throttlingErrorCodes.contains("RequestLimitExceeded"))
    XCTAssertFalse(throttlingErrorCodes.contains("InvalidPermission.Duplicate"))
  }
}
