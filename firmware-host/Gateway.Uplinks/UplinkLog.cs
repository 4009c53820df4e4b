using Gateway.Routing;
using Microsoft.Extensions.Logging;

namespace Gateway.Uplinks;

/// <summary>Uplink events: 5000-5099.</summary>
internal static partial class UplinkLog
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "Uplink {Uplink}: {Count} messages waiting in its buffer at start")]
    public static partial void Opened(ILogger logger, string uplink, int count);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Uplink {Uplink}: connected to {Endpoint} (in flight up to {Window}: {WindowSource})")]
    public static partial void Connected(ILogger logger, string uplink, string endpoint, int window, string windowSource);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Warning, Message = "Uplink {Uplink}: cannot connect to {Endpoint}: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, string uplink, string endpoint, string reason);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Uplink {Uplink}: link to {Endpoint} lost: {Reason}; {Backlog} messages buffered")]
    public static partial void Lost(ILogger logger, string uplink, string endpoint, string reason, int backlog);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Uplink {Uplink}: state {State}")]
    public static partial void State(ILogger logger, string uplink, LinkState state);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Warning, Message = "Uplink {Uplink}: no PUBACK from {Endpoint} for {Seconds:F0} s with {InFlight} in flight: stalled, reconnecting")]
    public static partial void Stalled(ILogger logger, string uplink, string endpoint, double seconds, int inFlight);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Warning, Message = "Uplink {Uplink}: the broker rejected a message to '{Topic}' ({Reason}); moved to queue {DeadLetterQueue}")]
    public static partial void Rejected(ILogger logger, string uplink, string topic, string reason, string deadLetterQueue);

    [LoggerMessage(EventId = 5015, Level = LogLevel.Warning, Message = "Uplink {Uplink}: the broker rejected a message to '{Topic}', and queue {DeadLetterQueue} refuses it (the disk under Storage:MinFreeMegabytes, or the store saturated); sending waits until it takes it")]
    public static partial void DeadLetterRefused(ILogger logger, string uplink, string topic, string deadLetterQueue);

    [LoggerMessage(EventId = 5016, Level = LogLevel.Warning, Message = "Uplink {Uplink}: queue {DeadLetterQueue} was deleted; declared again for a message the broker rejected")]
    public static partial void DeadLetterQueueDeclaredAgain(ILogger logger, string uplink, string deadLetterQueue);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Information, Message = "Uplink {Uplink}: primary endpoint {Endpoint} is back; returning to it")]
    public static partial void ReturningToPrimary(ILogger logger, string uplink, string endpoint);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Warning, Message = "Uplink {Uplink}: message from '{Topic}' could not be delivered locally")]
    public static partial void DownlinkFailed(ILogger logger, string uplink, string topic, Exception exception);

    [LoggerMessage(EventId = 5014, Level = LogLevel.Warning, Message = "Uplink {Uplink}: message from '{Topic}' refused: a durable queue that '{LocalTopic}' routes to took no more (full with reject-publish, or the disk under Storage:MinFreeMegabytes)")]
    public static partial void DownlinkRefused(ILogger logger, string uplink, string topic, string localTopic);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Error, Message = "Uplink {Uplink}: subscribing to '{Filter}' at the broker failed: {Reason}")]
    public static partial void SubscribeFailed(ILogger logger, string uplink, string filter, string reason);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Error, Message = "Uplink {Uplink}: sending failed; reconnecting")]
    public static partial void SendFailed(ILogger logger, string uplink, Exception exception);

    [LoggerMessage(EventId = 5012, Level = LogLevel.Warning, Message = "Uplink {Uplink}: subscribing to '{Filter}' at the broker was interrupted: {Reason}; reconnecting")]
    public static partial void SubscribeInterrupted(ILogger logger, string uplink, string filter, string reason);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Error, Message = "Uplink {Uplink}: the broker refused the credentials or client id ({Reason}); retrying every {Seconds:F0} s")]
    public static partial void NotAuthorized(ILogger logger, string uplink, string reason, double seconds);

    [LoggerMessage(EventId = 5013, Level = LogLevel.Warning, Message = "Uplink {Uplink}: dropped a {Bytes}-byte message from the broker unread: more than Uplinks:{Uplink}:MaxPacketSize ({MaxPacketSize} bytes)")]
    public static partial void OversizedDropped(ILogger logger, string uplink, long bytes, int maxPacketSize);
}
