using Microsoft.Extensions.Logging;

namespace Gateway.Protocols.Mqtt;

/// <summary>Retained-message events: ids 1050-1059 of the MQTT range.</summary>
internal static partial class MqttLog
{
    [LoggerMessage(EventId = 1050, Level = LogLevel.Warning, Message = "Retained publish to '{Topic}' from client {ClientId} refused: {Reason}; further refusals are logged at debug level until one fits again (gateway_mqtt_retained_refused_total counts them)")]
    public static partial void RetainedLimitReached(ILogger logger, string topic, string clientId, string reason);

    [LoggerMessage(EventId = 1053, Level = LogLevel.Debug, Message = "Retained publish to '{Topic}' from client {ClientId} refused: {Reason}")]
    public static partial void RetainedRefused(ILogger logger, string topic, string clientId, string reason);

    [LoggerMessage(EventId = 1051, Level = LogLevel.Critical, Message = "Loading retained messages from the store failed after {Loaded}; the others are not served until a restart loads them")]
    public static partial void RetainedLoadFailed(ILogger logger, int loaded, Exception exception);

    [LoggerMessage(EventId = 1052, Level = LogLevel.Error, Message = "{NotLoaded} retained messages in the store were not loaded: over Mqtt:MaxRetainedMessages ({MaxMessages}) or Mqtt:MaxRetainedBytes ({MaxBytes}); they stay on disk")]
    public static partial void RetainedOverLimit(ILogger logger, long notLoaded, long maxMessages, long maxBytes);
}
