using Gateway.Routing;

namespace Gateway.Mqtt;

/// <summary>
/// Where a message becomes the retained message of its MQTT topic for local subscribers, as a
/// retained publish by a local MQTT client does. The MQTT endpoint implements it; an uplink uses
/// it for retained messages it brings down from the cloud.
/// </summary>
public interface IRetainedMessageSink
{
    /// <summary>Retains <paramref name="message"/> (an empty body clears the topic); completes once it is on disk.</summary>
    Task RetainAsync(string topic, GatewayMessage message, CancellationToken cancellationToken);
}
