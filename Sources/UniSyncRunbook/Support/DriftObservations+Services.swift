import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess

/// What `runbook drift` reads back of the task definitions, services, the function and the queues.
extension Deployment {
  // MARK: - 6 Task definitions and services

  /// A task definition: the revision the checkpoint records (each service runs it, below) is
  /// active and holds the configuration's CPU, memory and image. A service: its desired count,
  /// the revision it runs, and the load balancer's target group (only the load-balanced one).
  func ecsObservation(_ action: Action) -> Observation? {
    for service in services {
      let definition = ECSStep.taskDefinitionExport(service.name)
      if action.name == "task-definition-\(service.name)" {
        return Observation(
          .aws(
            "ecs", "describe-task-definition", "--task-definition", .ref(definition), "--query",
            .text(
              "taskDefinition.[status, cpu, memory, containerDefinitions[?name=='\(service.name)'].image | [0]]"
            ), "--output", "text"),
          expected: Argument(
            [.text("ACTIVE \(ecs.cpu) \(ecs.memory) ")]
              + ECRStep.taggedImage(self, service.name).fragments),
          describes: "status, cpu, memory and image",
          missingErrors: ["ClientException"])
      }
      if action.name == "service-\(service.name)" {
        var expected: Argument = "\(ecs.desiredCount) \(ref: definition)"
        if service.loadBalanced {
          expected = "\(ecs.desiredCount) \(ref: definition) \(ref: "TG_ARN")"
        }
        return Observation(
          .aws(
            "ecs", "describe-services", "--cluster", .ref("CLUSTER_ARN"), "--services",
            .text(service.name), "--query",
            "services[?status=='ACTIVE'] | [0].[desiredCount, taskDefinition, join(' ', loadBalancers[].targetGroupArn)]",
            "--output", "text"),
          expected: expected,
          describes: "desired count, task definition"
            + (service.loadBalanced ? " and target group" : ""),
          missingErrors: ["ClusterNotFoundException"])
      }
    }
    return nil
  }

  // MARK: - 7 The function

  /// The function's runtime, memory, timeout and handler; its code's SHA-256 when the checkpoint
  /// recorded the one the tool uploaded (`function-code`).
  func functionObservation(_ action: Action) -> Observation? {
    let read: (String) -> Command = {
      .aws(
        "lambda", "get-function-configuration", "--function-name", .text(lambda.functionName),
        "--query", .text($0), "--output", "text")
    }
    switch action.name {
    case "function":
      return Observation(
        read("[Runtime, MemorySize, Timeout, Handler]"),
        expected: .text(
          "\(lambda.runtime) \(lambda.memoryMB) \(lambda.timeoutSeconds) \(lambda.handler)"),
        describes: "runtime, memory (MB), timeout (s) and handler",
        missingErrors: ["ResourceNotFoundException"])
    case "function-code":
      var observation = Observation(
        read("CodeSha256"), expected: "", describes: "code SHA-256",
        missingErrors: ["ResourceNotFoundException"])
      observation.expectsRecordedValue = true
      return observation
    default: return nil
    }
  }

  // MARK: - 8 Queues

  /// Visibility timeout and retention (the tool sets neither: SQS's defaults, 30 seconds and 4
  /// days, "CreateQueue", SQS API reference:
  /// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html),
  /// and the redrive policy: the dead-letter queue and the receive count, from the policy's JSON
  /// whatever its key order or quoting.
  func queueObservation(_ action: Action) -> Observation? {
    let all = (sqs.deadLetterQueue.isEmpty ? [] : [sqs.deadLetterQueue]) + sqs.queues
    guard let queue = all.first(where: { action.name == "queue-\($0)" }) else { return nil }
    let redriven = !sqs.deadLetterQueue.isEmpty && queue == sqs.deadLetterSource
    var expected: Argument = "30 345600"
    if redriven {
      expected = "30 345600 \(ref: SQSStep.arnExport(sqs.deadLetterQueue)) \(sqs.maxReceiveCount)"
    }
    var observation = Observation(
      .aws(
        "sqs", "get-queue-attributes", "--queue-url", .ref(SQSStep.urlExport(queue)),
        "--attribute-names", "VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
        "--query", "Attributes.[VisibilityTimeout, MessageRetentionPeriod, RedrivePolicy]",
        "--output", "text"),
      expected: expected,
      describes: "visibility timeout (s), retention (s)"
        + (redriven ? ", dead-letter queue and receive count" : ""),
      missingErrors: ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"])
    observation.extract = Self.redriveExtract
    return observation
  }

  /// A queue's `VisibilityTimeout MessageRetentionPeriod RedrivePolicy` as the two numbers, then
  /// the dead-letter queue's ARN and the receive count when there is a policy (in any key order,
  /// the count quoted or not: SQS hands the policy back as it keeps it).
  static let redriveExtract =
    #"^\s*(\S+)\s+(\S+)\s+(?:None\s*$|(?=.*"deadLetterTargetArn"\s*:\s*"([^"]*)")(?=.*"maxReceiveCount"\s*:\s*"?([0-9]+)))"#
}
