using Microsoft.Extensions.Logging;

namespace Gateway.Protocols.Mqtt;

/// <summary>MQTT adapter log events: ids 1000-1099.</summary>
internal static partial class MqttLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "MQTT adapter started: max packet size {MaxPacketSize} bytes")]
    public static partial void Started(ILogger logger, int maxPacketSize);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "MQTT connection {ConnectionId} from {RemoteEndPoint} sent a {Length}-byte packet, over the {Limit}-byte limit; disconnected")]
    public static partial void PacketTooLarge(ILogger logger, string connectionId, System.Net.EndPoint? remoteEndPoint, long length, int limit);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "MQTT connection {ConnectionId} from {RemoteEndPoint} sent a malformed packet length; disconnected")]
    public static partial void MalformedLength(ILogger logger, string connectionId, System.Net.EndPoint? remoteEndPoint);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "MQTT connection {ConnectionId} from {RemoteEndPoint} sent no CONNECT within {Timeout}; disconnected")]
    public static partial void ConnectTimeout(ILogger logger, string connectionId, System.Net.EndPoint? remoteEndPoint, TimeSpan timeout);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Routing an MQTT publish on '{Topic}' from client {ClientId} failed")]
    public static partial void PublishFailed(ILogger logger, string topic, string clientId, Exception exception);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Error, Message = "Delivering a message on '{RoutingKey}' to MQTT subscribers failed")]
    public static partial void DeliveryFailed(ILogger logger, string routingKey, Exception exception);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "MQTT adapter stopping: handing {Remaining} queued messages to subscribers, then disconnecting clients")]
    public static partial void Stopping(ILogger logger, int remaining);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Error, Message = "Binding MQTT subscription '{Filter}' for client {ClientId} failed")]
    public static partial void SubscribeFailed(ILogger logger, string filter, string clientId, Exception exception);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Information, Message = "Loaded {Count} retained messages from the store")]
    public static partial void RetainedLoaded(ILogger logger, int count);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Debug, Message = "Publish to '{Topic}' from client {ClientId} refused by a queue it routes to: {Refusal}")]
    public static partial void PublishRejected(ILogger logger, string topic, string clientId, Gateway.Routing.PublishRefusal refusal);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "A publish from MQTT client {ClientId} could not be stored; it is not acknowledged")]
    public static partial void CommitFailed(ILogger logger, string clientId, Exception exception);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Disconnecting MQTT client {ClientId} after a failed store failed: {Reason}")]
    public static partial void DisconnectFailed(ILogger logger, string clientId, string reason);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "MQTT connection {ConnectionId} from {RemoteEndPoint} sent a {PacketType} with {Problem}, which MQTT does not allow; refused ({Reason}) and disconnected")]
    public static partial void PacketRefused(ILogger logger, string connectionId, System.Net.EndPoint? remoteEndPoint, string packetType, string problem, string reason);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Debug, Message = "MQTT connection {ConnectionId}: MQTTnet's disposal of its ended session raced a message fan-out (harmless; the session was already deleted)")]
    public static partial void SessionDisposalRaced(ILogger logger, string connectionId);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Warning, Message = "MQTT client {ClientId} has been {Pending} messages behind for {Seconds} s; publishers no longer wait for it, and its session queues its messages (up to Mqtt:MaxPendingMessagesPerClient, then the oldest are dropped)")]
    public static partial void SubscriberBehind(ILogger logger, string clientId, int pending, double seconds);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Information, Message = "MQTT client {ClientId} has caught up; it paces publishers again")]
    public static partial void SubscriberCaughtUp(ILogger logger, string clientId);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Warning, Message = "Memory budget of {BudgetMegabytes} MB full: a message for MQTT session {ClientId} (offline or behind) was not queued; {Dropped} dropped so far")]
    public static partial void DroppedForMemory(ILogger logger, string clientId, long budgetMegabytes, long dropped);

    [LoggerMessage(EventId = 1023, Level = LogLevel.Warning, Message = "Memory budget of {BudgetMegabytes} MB full: QoS {Qos} publish to '{Topic}' from client {ClientId} refused; {Refused} refused so far")]
    public static partial void RefusedForMemory(ILogger logger, long budgetMegabytes, int qos, string topic, string clientId, long refused);
}
