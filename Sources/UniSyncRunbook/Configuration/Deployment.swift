import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// The parameters of one deployment of the guide, read from `runbooks/*.json`.
///
/// Operators edit this data, never the steps' code.
public struct Deployment: Sendable, Hashable {
  /// Names the deployment in tags and in the checkpoint (`unisync`, `unisync-staging`).
  public var name: String
  public var region: String
  public var network: Network
  public var securityGroups: SecurityGroups
  public var rds: RDS
  public var secrets: Secrets
  public var ecr: ECR
  public var services: [Service]
  public var ecs: ECS
  public var lambda: Lambda
  public var sqs: SQS
  /// `host:port` images are pushed to instead of the ECR registry host (local emulator only).
  public var registry: String?
  /// What `verify` probes instead of `http://<ALB_DNS>/actuator/health`.
  public var healthCheckUrl: String?
  /// `s3://BUCKET/PREFIX` keeping the checkpoint, journal and lock (`--state` overrides it); nil: local.
  public var state: String?
  /// The tag for the images this run builds (`run --tag`); never read from the configuration file.
  /// Nil: the short git commit of the build context, else a UTC timestamp.
  public var imageTag: String?
  /// What this run was asked for beyond the image tag (never read from the configuration file).
  public var request = RunRequest()
  /// Bounds and intervals of verify, update and destroy.
  public var operations = Operations()
  /// The folder of the configuration file; relative paths in it are resolved against this.
  public var baseDirectory: String

  public struct Network: Sendable, Hashable {
    public var vpcName: String
    public var vpcCidr: String
    public var subnets: [Subnet]
    public var internetGatewayName: String
    public var elasticIpName: String
    public var natGatewayName: String
    /// The `id` of the public subnet that holds the NAT gateway.
    public var natSubnet: String
    public var natWaitTimeoutSeconds: Int
    public var publicRouteTableName: String
    public var privateRouteTableName: String
  }

  public struct Subnet: Sendable, Hashable {
    /// Short id (`public-2a`); the export is `SUBNET_PUBLIC_2A`.
    public var id: String
    public var name: String
    public var cidr: String
    public var zone: String
    public var isPublic: Bool

    public var export: String {
      "SUBNET_" + id.uppercased().replacingOccurrences(of: "-", with: "_")
    }
  }

  public struct SecurityGroup: Sendable, Hashable {
    public var name: String
    public var description: String
  }

  public struct SecurityGroups: Sendable, Hashable {
    public var alb: SecurityGroup
    public var albPorts: [Int]
    public var ecs: SecurityGroup
    public var ecsPortRange: ClosedRange<Int>
    public var rds: SecurityGroup
    public var rdsPort: Int
  }

  public struct RDS: Sendable, Hashable {
    public var subnetGroupName: String
    public var subnetGroupDescription: String
    public var instanceIdentifier: String
    public var instanceClass: String
    public var engine: String
    public var engineVersion: String
    public var masterUsername: String
    public var allocatedStorageGB: Int
    public var backupRetentionDays: Int
    public var multiAZ: Bool
    public var waitTimeoutSeconds: Int
    public var databases: [String]
  }

  /// A secret whose value the operator supplies (the tool cannot invent it).
  public struct SuppliedSecret: Sendable, Hashable {
    public var name: String
    /// The environment variable of each field (`value` for a plain string; `userPoolId`, `clientId`).
    public var environment: [String: String]
    /// A file holding the value (a JSON object for structured secrets).
    public var file: String?
  }

  /// The secrets of guide 4. The guide's `unisync/rds-password` is not among them: RDS keeps the
  /// master password in a secret of its own (`--manage-master-user-password`, see ``RDSStep``).
  public struct Secrets: Sendable, Hashable {
    public var encryptionKeyName: String
    public var canvasToken: SuppliedSecret
    public var cognito: SuppliedSecret
    public var recoveryWindowDays: Int
  }

  public struct ECR: Sendable, Hashable {
    public var repositoryPrefix: String
    public var scanOnPush: Bool
  }

  public struct Service: Sendable, Hashable {
    public var name: String
    public var port: Int
    /// The docker build context, relative to the configuration file's folder.
    public var buildContext: String
    /// The database the service uses (nil for the gateway).
    public var database: String?
    /// Whether the ALB's target group forwards to it.
    public var loadBalanced: Bool
    /// Its ECS task definition (a JSON file beside the configuration, with `${NAME}` placeholders).
    public var taskDefinition: DocumentTemplate
  }

  public struct ECS: Sendable, Hashable {
    public var cluster: String
    /// Task definition families and log groups are `<prefix>-<service>` and `/ecs/<prefix>-<service>`.
    public var familyPrefix: String
    public var executionRole: String
    public var cpu: String
    public var memory: String
    public var desiredCount: Int
    public var loadBalancer: String
    public var targetGroup: String
    public var healthCheckPath: String
    public var deregistrationDelaySeconds: Int
    public var healthCheckGracePeriodSeconds: Int
    public var deploymentTimeoutSeconds: Int
    public var logRetentionDays: Int
  }

  public struct Lambda: Sendable, Hashable {
    public var functionName: String
    public var roleName: String
    public var source: String
    public var handler: String
    public var runtime: String
    public var timeoutSeconds: Int
    public var memoryMB: Int
    public var environment: [String: String]
  }

  public struct SQS: Sendable, Hashable {
    public var queues: [String]
    public var deadLetterQueue: String
    public var deadLetterSource: String
    public var maxReceiveCount: Int
  }
}
