using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Gateway.Protocols.Mqtt;

/// <summary>The <c>Mqtt</c> configuration section.</summary>
public sealed class MqttOptions
{
    public const string Section = "Mqtt";

    /// <summary>Plain TCP listener port; 0 picks a free one, -1 turns the listener off.</summary>
    [Range(-1, 65535, ErrorMessage = "Mqtt:Port must be between -1 (off) and 65535")]
    public int Port { get; set; } = 1883;

    /// <summary>Address the TCP listener binds to.</summary>
    [Required(ErrorMessage = "Mqtt:BindAddress is required")]
    public string BindAddress { get; set; } = "0.0.0.0";

    /// <summary>Path of the MQTT-over-WebSocket endpoint on the HTTP listener; empty turns it off.</summary>
    public string WebSocketPath { get; set; } = "/ws/mqtt";

    /// <summary>Largest MQTT packet accepted, in bytes, checked before the packet is buffered.</summary>
    [Range(64, 268_435_455, ErrorMessage = "Mqtt:MaxPacketSize must be between 64 and 268435455 bytes")]
    public int MaxPacketSize { get; set; } = 256 * 1024;

    /// <summary>How long a new connection may take to send its CONNECT packet.</summary>
    [TimeSpanRange("00:00:00.100", "00:10:00", ErrorMessage = "Mqtt:ConnectTimeout must be between 00:00:00.100 and 00:10:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Messages queued per client before the oldest are dropped (slow or offline persistent sessions).</summary>
    [Range(1, 10_000_000, ErrorMessage = "Mqtt:MaxPendingMessagesPerClient must be between 1 and 10000000")]
    public int MaxPendingMessagesPerClient { get; set; } = 100_000;

    /// <summary>
    /// Retained messages kept (MQTTnet holds every one in memory): a retained publish for a new
    /// topic beyond it is refused (MQTT 5: PUBACK 0x97). Clearing a topic is always accepted.
    /// </summary>
    [Range(0, 10_000_000, ErrorMessage = "Mqtt:MaxRetainedMessages must be between 0 and 10000000")]
    public int MaxRetainedMessages { get; set; } = 100_000;

    /// <summary>
    /// Payload and topic bytes of all retained messages together; a retained publish that would
    /// take the total beyond it is refused (MQTT 5: PUBACK 0x97). The default leaves most of the
    /// shipped build's 256 MB heap to everything else.
    /// </summary>
    [Range(0, long.MaxValue, ErrorMessage = "Mqtt:MaxRetainedBytes must be 0 or more")]
    public long MaxRetainedBytes { get; set; } = 64L * 1024 * 1024;
}

[OptionsValidator]
internal sealed partial class MqttOptionsValidator : IValidateOptions<MqttOptions>
{
}

/// <summary>The listener address must parse; the message names the key.</summary>
internal sealed class MqttAddressValidator : IValidateOptions<MqttOptions>
{
    public ValidateOptionsResult Validate(string? name, MqttOptions options) => ProtocolOptions.CheckAddress("Mqtt:BindAddress", options.BindAddress);
}
