import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState

// What verify and update read of the aws CLI's JSON answers, as types. Only the fields they use
// are declared (the rest is ignored); every field may be missing, as AWS leaves out what has no
// value, and a missing list is an empty one.

/// An answer of the aws CLI (`--output json`) that may be empty or missing altogether.
protocol AWSAnswer: Decodable {
  /// The empty answer (`{}`).
  init()
}

extension AWSAnswer {
  /// The answer in `text`; an output that is not this answer counts as an empty one (verify
  /// reports what it can read, and what it cannot as missing).
  static func parse(_ text: String) -> Self {
    (try? JSONDecoder().decode(Self.self, from: Data(text.utf8))) ?? Self()
  }
}

extension ProcedureContext {
  /// Runs `command` and decodes its answer; an empty output is an empty answer. A failed command,
  /// an output that is not JSON (shown masked) or not this answer fails the procedure.
  func answer<Answer: AWSAnswer>(_ type: Answer.Type, of command: Command) async throws -> Answer {
    // The engine's `json` parses the output and words its failure (the excerpt masked); the value
    // is encoded once more for JSONDecoder, which costs microseconds beside the call.
    let value = try await json(command)
    do {
      let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
      return try JSONDecoder().decode(Answer.self, from: data)
    } catch {
      throw ProcedureFailure(
        "the output is not the answer expected (\(decodingProblem(error)))",
        command: shown(command))
    }
  }
}

/// Where and why decoding failed, in a few words (the values are not shown: they may be secret).
private func decodingProblem(_ error: Error) -> String {
  func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
  }
  switch error {
  case DecodingError.typeMismatch(let type, let context):
    return "\(path(context.codingPath)) is not \(type)"
  case DecodingError.valueNotFound(let type, let context):
    return "\(path(context.codingPath)) has no \(type)"
  case DecodingError.keyNotFound(let key, let context):
    return "\(path(context.codingPath + [key])) is missing"
  case DecodingError.dataCorrupted(let context):
    return context.debugDescription
  default:
    return "\(error)"
  }
}

/// A list AWS may leave out (or answer `null` for): then it is empty.
@propertyWrapper
struct EmptyWhenMissing<Item: Decodable>: Decodable {
  var wrappedValue: [Item]

  init(wrappedValue: [Item]) { self.wrappedValue = wrappedValue }

  init(from decoder: Decoder) throws {
    wrappedValue = try decoder.singleValueContainer().decode([Item].self)
  }
}

extension KeyedDecodingContainer {
  /// Decodes an ``EmptyWhenMissing`` list: a missing key or `null` is an empty list.
  func decode<Item>(_ type: EmptyWhenMissing<Item>.Type, forKey key: Key) throws
    -> EmptyWhenMissing<Item>
  {
    try decodeIfPresent(type, forKey: key) ?? EmptyWhenMissing(wrappedValue: [])
  }
}

/// Any JSON answer, for the reads that pick their fields with `--query`.
extension JSONValue: AWSAnswer {
  init() { self = .object([:]) }
}

// MARK: - ECS

/// `ecs describe-services`: the services found, and a failure for each one that was not.
struct ServicesAnswer: AWSAnswer {
  @EmptyWhenMissing var services: [ECSService] = []
  @EmptyWhenMissing var failures: [Failure] = []

  /// A service that was asked for and not found (`MISSING`).
  struct Failure: Decodable {
    var arn: String?
    var reason: String?
  }
}

/// `ecs update-service`: the service as it is after the update.
struct ServiceUpdateAnswer: AWSAnswer {
  var service: ECSService?
}

/// One ECS service as `describe-services` and `update-service` describe it.
struct ECSService: Decodable {
  var serviceName: String?
  var status: String?
  var taskDefinition: String?
  var runningCount: Int?
  var desiredCount: Int?
  var pendingCount: Int?
  /// The PRIMARY deployment first, then those it replaces.
  @EmptyWhenMissing var deployments: [ECSDeployment] = []
  /// Newest first.
  @EmptyWhenMissing var events: [Event] = []

  /// One line of the service's event log.
  struct Event: Decodable {
    var id: String?
    var message: String?
    var createdAt: AWSTime?
  }

  /// The deployment ECS is rolling out (or has rolled out).
  var primary: ECSDeployment? { deployments.first { $0.status == "PRIMARY" } }

  /// The ids of the events it lists.
  var eventIDs: Set<String> { Set(events.compactMap(\.id)) }
}

/// One deployment of an ECS service: a task definition being rolled out, or replaced.
struct ECSDeployment: Decodable {
  var id: String?
  /// `PRIMARY`, `ACTIVE` (being replaced) or `INACTIVE`.
  var status: String?
  /// `IN_PROGRESS`, `COMPLETED` or `FAILED`; missing for a service without the circuit breaker.
  var rolloutState: String?
  var rolloutStateReason: String?
  var runningCount: Int?
  var desiredCount: Int?
  var pendingCount: Int?
  var failedTasks: Int?
}

/// `ecs list-tasks`.
struct TaskListAnswer: AWSAnswer {
  @EmptyWhenMissing var taskArns: [String] = []
}

/// `ecs describe-tasks`.
struct TasksAnswer: AWSAnswer {
  @EmptyWhenMissing var tasks: [ECSTask] = []
  /// A task that was asked for and is not known (`MISSING`: stopped too long ago).
  @EmptyWhenMissing var failures: [ServicesAnswer.Failure] = []
}

/// A task, and why it stopped.
struct ECSTask: Decodable {
  var taskArn: String?
  /// `PROVISIONING` ... `RUNNING` ... `STOPPED`.
  var lastStatus: String?
  var stoppedReason: String?
  @EmptyWhenMissing var containers: [Container] = []

  /// One container of the task, and how it ended.
  struct Container: Decodable {
    var name: String?
    var reason: String?
    var exitCode: Int?
  }
}

/// `ecs describe-task-definition`: the task definition as a document, every field kept (update
/// registers it again with another image, and must not lose what it does not know).
struct TaskDefinitionAnswer: AWSAnswer {
  var taskDefinition: [String: JSONValue]?
}

// MARK: - Elastic Load Balancing

/// `elbv2 describe-target-health`.
struct TargetHealthAnswer: AWSAnswer {
  @EmptyWhenMissing var descriptions: [Description] = []

  /// One target and its health.
  struct Description: Decodable {
    var target: Target?
    var health: Health?

    private enum CodingKeys: String, CodingKey {
      case target = "Target"
      case health = "TargetHealth"
    }
  }

  /// Where the load balancer sends requests (for ip targets, a task's address).
  struct Target: Decodable {
    var id: String?
    var port: Int?

    private enum CodingKeys: String, CodingKey {
      case id = "Id"
      case port = "Port"
    }
  }

  /// What the load balancer's health checks make of the target.
  struct Health: Decodable {
    /// `healthy`, `unhealthy`, `initial`, `unused`, `draining`, `unavailable`.
    var state: String?
    /// `Target.Timeout`, `Elb.InitialHealthChecking`...
    var reason: String?
    var description: String?

    private enum CodingKeys: String, CodingKey {
      case state = "State"
      case reason = "Reason"
      case description = "Description"
    }
  }

  private enum CodingKeys: String, CodingKey { case descriptions = "TargetHealthDescriptions" }
}

// MARK: - CloudWatch Logs

/// `logs filter-log-events`.
struct LogEventsAnswer: AWSAnswer {
  @EmptyWhenMissing var events: [Event] = []

  /// One log line.
  struct Event: Decodable {
    var eventId: String?
    /// Milliseconds since 1970.
    var timestamp: Int?
    var message: String?
  }
}

// MARK: - Times

/// A time as the aws CLI prints it: seconds since 1970 (v1) or ISO 8601 text (v2).
enum AWSTime: Decodable {
  case seconds(Double)
  case text(String)

  init(from decoder: Decoder) throws {
    let container = try decoder.singleValueContainer()
    if let seconds = try? container.decode(Double.self) {
      self = .seconds(seconds)
    } else {
      self = .text(try container.decode(String.self))
    }
  }

  /// `HH:MM:SS` for seconds; the text as it is.
  var shown: String {
    switch self {
    case .seconds(let seconds): timestamp(Date(timeIntervalSince1970: seconds))
    case .text(let text): text
    }
  }
}
