import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 5 with recording fakes of `aws` and `docker` (Tests/Fixtures/bin-fake): what exactly
/// each program receives, without AWS, an emulator or a Docker engine.
final class ECRStepTests: XCTestCase {
  static let services = ["api-gateway", "user-service", "course-service", "schedule-service"]

  /// A workspace whose `aws` and `docker` are the recording fakes, answering as `responses` say.
  func fakeWorkspace(_ responses: [String: Any], name: String = #function) throws
    -> (workspace: Workspace, log: String)
  {
    let workspace = try Workspace(name: name)
    let log = workspace.directory.appendingPathComponent("fake.log").path
    let answers = workspace.directory.appendingPathComponent("responses.json")
    try JSONSerialization.data(withJSONObject: responses).write(to: answers)
    workspace.environment = [
      "PATH": repositoryRoot.appendingPathComponent("Tests/Fixtures/bin-fake").path + ":"
        + Workspace.shimmedPath,
      "RUNBOOK_FAKE_LOG": log, "RUNBOOK_FAKE_RESPONSES": answers.path,
    ]
    return (workspace, log)
  }

  /// Answers for a whole `run ecr` (with `--jobs 1` the repositories are created in order).
  static func answers(token: String, push: [String: Any]) -> [String: Any] {
    [
      "sts get-caller-identity": ["stdout": "123456789012\n"],
      "ecr get-login-password": ["stdout": token + "\n"],
      "ecr create-repository": services.map {
        ["stdout": "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/unisync/\($0)\n"]
      },
      "docker version": ["stdout": "27.5.1\n"],
      // A fresh registry: neither the unique tag nor latest is there yet.
      "docker manifest inspect": ["exit": 1, "stderr": "no such manifest\n"],
      "docker login": ["stdout": "Login Succeeded\n"],
      "docker build": ["stdout": "Successfully built 0123456789ab\n"],
      "docker push": push,
    ]
  }

  static let digest = "sha256:" + String(repeating: "ab", count: 32)
  static let pushed: [String: String] = [
    "stdout":
      "The push refers to repository [127.0.0.1:5000/unisync/x]\ntag: digest: \(digest) size: 524\n"
  ]

  /// The calls the fakes logged; none may be one they were not told to expect.
  func calls(_ log: String, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
    let calls = loggedAWSCalls(log)
    XCTAssertEqual(
      calls.filter { $0["refused"] as? Bool == true }.compactMap { $0["argv"] as? [String] }, [],
      "calls the fakes were not told to expect", file: file, line: line)
    return calls
  }

  func testTheECRTokenReachesDockerLoginOnlyOnStandardInput() async throws {
    let token = "ecr-token-" + UUID().uuidString + UUID().uuidString
    let (workspace, log) = try fakeWorkspace(Self.answers(token: token, push: Self.pushed))
    let run = try await workspace.run(["run", "ecr", "--yes", "--jobs", "1"])
    XCTAssertEqual(run.status, 0, run.summary)

    let calls = calls(log)
    let logins = calls.filter { $0["key"] as? String == "docker login" }
    XCTAssertEqual(logins.count, 1)
    let login = try XCTUnwrap(logins.first)
    XCTAssertEqual(
      login["argv"] as? [String],
      ["login", "--username", "AWS", "--password-stdin", "127.0.0.1:5000"])
    let stdin = try XCTUnwrap(Data(base64Encoded: login["stdin"] as? String ?? ""))
    XCTAssertEqual(
      String(decoding: stdin, as: UTF8.self), token + "\n",
      "docker login reads the token aws printed")
    let producer = try XCTUnwrap(calls.first { $0["key"] as? String == "ecr get-login-password" })
    XCTAssertTrue(
      (producer["argv"] as? [String] ?? []).starts(with: ["ecr", "get-login-password"]))

    // Nowhere else: not in any argv, not on any other standard input, not in the tool's output,
    // not in the state directory (checkpoint, journal, audit log).
    for call in calls {
      XCTAssertFalse(
        (call["argv"] as? [String] ?? []).joined(separator: " ").contains(token), "\(call)")
      if call["key"] as? String != "docker login", let other = call["stdin"] as? String,
        let data = Data(base64Encoded: other)
      {
        XCTAssertFalse(String(decoding: data, as: UTF8.self).contains(token), "\(call)")
      }
    }
    XCTAssertFalse(run.stdout.contains(token))
    XCTAssertFalse(run.stderr.contains(token))
    for (file, data) in workspace.stateSnapshot() {
      XCTAssertFalse(String(decoding: data, as: UTF8.self).contains(token), file)
    }

    // Four builds and eight pushes: each image with its unique tag and `latest`.
    let tag = try XCTUnwrap(workspace.checkpoint().exports["IMAGE_TAG"])
    let builds = calls.filter { $0["key"] as? String == "docker build" }.compactMap {
      $0["argv"] as? [String]
    }
    XCTAssertEqual(builds.count, 4)
    for service in Self.services {
      let image = "127.0.0.1:5000/unisync/\(service)"
      XCTAssertTrue(
        builds.contains {
          $0.contains("\(image):\(tag)") && $0.contains("\(image):latest")
            && $0.last == repositoryRoot.appendingPathComponent("examples/services/\(service)").path
        }, "\(builds)")
      XCTAssertEqual(
        try workspace.checkpoint().exports[
          "IMAGE_DIGEST_\(service.uppercased().replacingOccurrences(of: "-", with: "_"))"],
        Self.digest)
    }
    let pushes = calls.filter { $0["key"] as? String == "docker push" }.compactMap {
      ($0["argv"] as? [String])?.last
    }
    XCTAssertEqual(
      Set(pushes),
      Set(
        Self.services.flatMap {
          ["127.0.0.1:5000/unisync/\($0):\(tag)", "127.0.0.1:5000/unisync/\($0):latest"]
        }))
    XCTAssertEqual(pushes.count, 8)
  }

  /// `--tag` names the images; a run that stops half-way keeps its tag when resumed without it.
  func testTagOptionNamesTheImagesAndAResumedRunKeepsIt() async throws {
    let failing: [String: Any] = [
      "stderr": "denied: requested access to the resource is denied\n", "exit": 1,
    ]
    let (workspace, log) = try fakeWorkspace(Self.answers(token: "token", push: failing))
    let first = try await workspace.run(["run", "ecr", "--yes", "--jobs", "1", "--tag", "v1.2.3"])
    XCTAssertEqual(first.status, 1, first.summary)
    XCTAssertTrue(first.stderr.contains("requested access to the resource is denied"), first.stderr)
    XCTAssertEqual(try workspace.checkpoint().exports["IMAGE_TAG"], "v1.2.3")
    XCTAssertTrue(
      calls(log).contains {
        ($0["argv"] as? [String] ?? []).contains("127.0.0.1:5000/unisync/api-gateway:v1.2.3")
      })

    let answers = Self.answers(token: "token", push: Self.pushed)
    try JSONSerialization.data(withJSONObject: answers).write(
      to: workspace.directory.appendingPathComponent("responses.json"))
    let resumed = try await workspace.run(["run", "ecr", "--yes", "--jobs", "1"])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    let pushes = calls(log).filter { $0["key"] as? String == "docker push" }
      .compactMap { ($0["argv"] as? [String])?.last }
    XCTAssertTrue(
      pushes.allSatisfy { $0.hasSuffix(":v1.2.3") || $0.hasSuffix(":latest") }, "\(pushes)")
    XCTAssertEqual(try workspace.checkpoint().exports["IMAGE_TAG"], "v1.2.3")

    let bad = try await workspace.run(["run", "ecr", "--yes", "--tag", "-bad tag"])
    XCTAssertEqual(bad.status, 2, bad.summary)
    XCTAssertTrue(bad.stderr.contains("--tag: '-bad tag' is not a valid image tag"), bad.stderr)
  }

  func testLaterStepsNeedTheEarlierOnesFirst() async throws {
    let workspace = try Workspace()
    let (run, calls) = try await workspace.runLogged(["run", "ecs", "--yes"])
    XCTAssertEqual(run.status, 2, run.summary)
    XCTAssertTrue(run.stderr.contains("step 'ecs' needs"), run.stderr)
    XCTAssertTrue(run.stderr.contains("IMAGE_TAG"), run.stderr)
    XCTAssertEqual(calls.count, 0)
  }
}
