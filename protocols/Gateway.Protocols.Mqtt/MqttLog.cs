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

    [LoggerMessage(EventId = 1009, Level = LogLevel.Debug, Message = "Publish to '{Topic}' from client {ClientId} refused: a queue it routes to is full (reject-publish)")]
    public static partial void PublishRejected(ILogger logger, string topic, string clientId);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "A publish from MQTT client {ClientId} could not be stored; it is not acknowledged")]
    public static partial void CommitFailed(ILogger logger, string clientId, Exception exception);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Disconnecting MQTT client {ClientId} after a failed store failed: {Reason}")]
    public static partial void DisconnectFailed(ILogger logger, string clientId, string reason);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "MQTT connection {ConnectionId} from {RemoteEndPoint} sent a {PacketType} with {Problem}, which MQTT does not allow; refused ({Reason}) and disconnected")]
    public static partial void PacketRefused(ILogger logger, string connectionId, System.Net.EndPoint? remoteEndPoint, string packetType, string problem, string reason);
}
