import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 8: the SQS queues. The guide creates `assignment-events-queue-dlq` but never links it to
/// anything; here the dead-letter queue is created first and its source queue gets a redrive
/// policy pointing at it.
package struct SQSStep: Step {
  package let id = "sqs"
  package let section = "8"
  package let title = "SQS queues"

  package init() {}

  /// `QUEUE_URL_ASSIGNMENT_EVENTS_QUEUE` for `assignment-events-queue`.
  package static func urlExport(_ queue: String) -> String { "QUEUE_URL_" + exportSuffix(queue) }
  /// `QUEUE_ARN_ASSIGNMENT_EVENTS_QUEUE` for `assignment-events-queue`.
  package static func arnExport(_ queue: String) -> String { "QUEUE_ARN_" + exportSuffix(queue) }

  package func actions(for deployment: Deployment) -> [Action] {
    let sqs = deployment.sqs
    let deadLetter = sqs.deadLetterQueue.isEmpty ? nil : sqs.deadLetterQueue
    // The DLQ first: its ARN goes into the redrive policy of its source queue.
    var queues = deadLetter.map { [$0] } ?? []
    for queue in sqs.queues where !queues.contains(queue) { queues.append(queue) }

    // CreateQueue answers with a queue of that name that exists already as if it had made it
    // (someone else's, in a shared account): one listing tells which names exist, and only those
    // are looked at before the create.
    let existing = Action(
      name: "existing-queues", summary: "list the queues of the account and region",
      effect: .read,
      command: .aws("sqs", "list-queues", "--query", "QueueUrls[]", "--output", "text"),
      // Its answer spares the prechecks of this run only: a resumed run with creates left lists
      // again.
      ephemeral: true)
    let made = queues.flatMap { queue -> [Action] in
      var redrive: Argument?
      if let deadLetter, queue == sqs.deadLetterSource {
        // RedrivePolicy is itself a JSON string inside the attribute map.
        let target = Self.arnExport(deadLetter)
        redrive = .document(
          "attributes-\(queue)",
          #"{"RedrivePolicy":"{\"deadLetterTargetArn\":\"\#(ref: target)\",\"maxReceiveCount\":\"\#(sqs.maxReceiveCount)\"}"}"#
        )
      }
      return [create(deployment, queue: queue, attributes: redrive), arn(queue)]
    }
    return deployment.observing([existing] + made, step: id)
  }

  /// `create-queue`. Repeating it with the same attributes returns the same queue, so it is safe to
  /// run again; a queue of that name with other attributes makes it fail, and the step stops there.
  /// A queue of that name that exists already (listed by `existing-queues`) and that this run did
  /// not start creating is not created over: the step stops, and `--adopt` takes it over as it is
  /// (no settings applied; `destroy` leaves it).
  /// A name deleted less than 60 seconds ago cannot be created again yet
  /// (`AWS.SimpleQueueService.QueueDeletedRecently`, "CreateQueue" in the SQS API reference):
  /// the create waits that out.
  private func create(_ deployment: Deployment, queue: String, attributes: Argument?) -> Action {
    var command: [Argument] = ["sqs", "create-queue", "--queue-name", .text(queue)]
    if let attributes { command += ["--attributes", attributes] }
    command += [
      "--tags", deployment.tagMap(name: queue, action: "\(id)/queue-\(queue)"),
      "--query", "QueueUrl", "--output", "text",
    ]
    let url = #"^https?://\S+/[0-9]{12}/"# + NSRegularExpression.escapedPattern(for: queue) + "$"
    var action = Action.create(
      "queue-\(queue)",
      "create queue \(queue)" + (attributes == nil ? "" : " with its redrive policy"),
      export: Self.urlExport(queue), pattern: url, command: .aws(command),
      // Queue names are unique in an account and region: the name finds what an interrupted run made.
      lookup: .aws(
        "sqs", "get-queue-url", "--queue-name", .text(queue), "--query", "QueueUrl", "--output",
        "text"))
    action.idempotent = true
    action.precheck = Precheck(
      .aws(
        "sqs", "get-queue-url", "--queue-name", .text(queue), "--query", "QueueUrl", "--output",
        "text"),
      rule: "a queue named \(queue) exists already: not this deployment's to create over",
      refusal: { output, _ in
        output.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("/" + queue)
          ? "queue '\(queue)' exists already, and this deployment did not create it (CreateQueue would hand it over as if it were new): "
            + "pass --adopt to use it as it is (destroy then leaves it), or delete or rename it"
          : nil
      },
      // The read only refuses: it never makes the create unneeded.
      upToDate: { _, _ in nil })
    action.settledBy = .nothingToFind(unlessListedBy: "existing-queues", name: queue)
    action.transientErrors = TransientErrors(
      ["QueueDeletedRecently"], seconds: Self.deletedRecentlySeconds, intervalSeconds: 5)
    // A run killed between its intent and create-queue made nothing: the lookup finds no queue.
    action.lookup?.notFoundErrors = ["NonExistentQueue", "QueueDoesNotExist"]
    // --adopt: a queue of that name, someone else's, is used as it is.
    action.adoptLookup = action.lookup
    action.errorAdvice = [
      "QueueAlreadyExists":
        "queue '\(queue)' already exists with other attributes than this step gives it; the tool will not change a live queue: "
        + "compare them (aws sqs get-queue-attributes --attribute-names All), then change the queue or delete it yourself, and run again"
    ]
    return action
  }

  /// The queue's ARN, for redrive policies and IAM policies. It follows from the queue's name
  /// (`arn:aws:sqs:REGION:ACCOUNT:NAME`), so no `get-queue-attributes` call is made for it; it is
  /// exported once the queue exists.
  private func arn(_ queue: String) -> Action {
    .derived(
      "queue-arn-\(queue)", "the ARN of \(queue), from its name", export: Self.arnExport(queue),
      pattern: arnPattern("sqs", "", name: queue),
      value: Self.queueARN(queue), after: ["queue-\(queue)"])
  }

  /// How long a create waits out `QueueDeletedRecently`: AWS asks for 60 seconds after a delete.
  static let deletedRecentlySeconds: Double = 75

  /// `arn:aws:sqs:<REGION>:<ACCOUNT_ID>:QUEUE`.
  static func queueARN(_ queue: String) -> Argument {
    "arn:aws:sqs:\(ref: ContextValue.region):\(ref: ContextValue.account):\(queue)"
  }
}

// MARK: - Teardown (runbook destroy)

extension SQSStep {
  /// Each queue deleted. `create-queue` returns a queue that exists already as if it had made it,
  /// so the queue's tags decide too: one that does not carry this deployment's tag is left alone.
  package func teardown(for deployment: Deployment) -> [Action] {
    let sqs = deployment.sqs
    var queues = sqs.queues
    if !sqs.deadLetterQueue.isEmpty, !queues.contains(sqs.deadLetterQueue) {
      queues.append(sqs.deadLetterQueue)
    }
    return queues.map { queue in
      Action(
        name: "delete-queue-\(queue)", summary: "delete queue \(queue)", effect: .write,
        command: .aws("sqs", "delete-queue", "--queue-url", .ref(Self.urlExport(queue))),
        alreadyDoneErrors: ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"],
        precheck: .notTagged(
          .aws(
            "sqs", "list-queue-tags", "--queue-url", .ref(Self.urlExport(queue)),
            "--query", "Tags.\"\(OwnershipTag.deployment)\"", "--output", "text"),
          deployment: deployment.name),
        deletes: "queue-\(queue)")
    }
  }
}
