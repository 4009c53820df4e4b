namespace Gateway.Uplinks;

/// <summary>The <c>Uplinks</c> configuration section: one entry per cloud broker, keyed by name.</summary>
public sealed class UplinksOptions
{
    public const string Section = "Uplinks";

    public Dictionary<string, UplinkOptions> Links { get; } = new(StringComparer.Ordinal);
}

/// <summary>One uplink: a bridge to a cloud broker with its own durable queue.</summary>
public sealed class UplinkOptions
{
    /// <summary><c>mqtt</c> (AMQP uplinks are not available yet).</summary>
    public string Protocol { get; set; } = "mqtt";

    /// <summary>Broker addresses tried in order: <c>mqtt://host:1883</c> or <c>mqtts://host:8883</c>. The first is the primary.</summary>
    public List<string> Endpoints { get; } = [];

    /// <summary>MQTT client id at the cloud broker; default <c>gateway-&lt;machine&gt;-&lt;uplink&gt;</c>.</summary>
    public string? ClientId { get; set; }

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary><c>3.1.1</c> or <c>5</c>.</summary>
    public string ProtocolVersion { get; set; } = "5";

    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait between reconnect attempts (the back-off doubles up to it, with jitter).</summary>
    public TimeSpan ReconnectDelayMax { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>While on a secondary endpoint, how often the primary is tried again.</summary>
    public TimeSpan ReturnToPrimaryInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Most messages sent and not yet both confirmed by the broker and removed on disk: all a
    /// crash can send again. Those awaiting PUBACK are further bounded by the broker's Receive Maximum.
    /// </summary>
    public int MaxInFlight { get; set; } = 512;

    /// <summary>
    /// Largest MQTT packet taken from the broker, in bytes. A larger PUBLISH is dropped unread as it
    /// streams in (and logged), and acknowledged at QoS 1 and 2 (MQTT 5: reason 0x83) so that the
    /// broker neither sends it again nor holds later messages back behind it; any other larger
    /// packet closes the connection.
    /// </summary>
    public int MaxPacketSize { get; set; } = 256 * 1024;

    /// <summary>Most messages per second sent to the broker (metered links); 0 = no limit.</summary>
    public int DrainRate { get; set; }

    /// <summary>Connected but no PUBACK for this long: the link is stalled and is reconnected.</summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public UplinkTlsOptions Tls { get; set; } = new();

    public List<ForwardRule> Forward { get; } = [];

    public List<DownlinkRule> Downlink { get; } = [];

    public UplinkBufferOptions Buffer { get; set; } = new();
}

/// <summary>TLS towards the broker (used for <c>mqtts://</c> endpoints).</summary>
public sealed class UplinkTlsOptions
{
    /// <summary>PEM file of the CA(s) that sign the broker's certificate; empty = the system's trust store.</summary>
    public string? CaFile { get; set; }

    /// <summary>PEM client certificate for mutual TLS (AWS IoT style).</summary>
    public string? CertificateFile { get; set; }

    /// <summary>PEM private key of the client certificate.</summary>
    public string? KeyFile { get; set; }

    /// <summary>Name expected in the broker's certificate; default the endpoint's host.</summary>
    public string? ServerName { get; set; }
}

/// <summary>Local messages to send to the cloud: local filter → remote topic.</summary>
public sealed class ForwardRule
{
    /// <summary>Local MQTT topic filter, e.g. <c>sensors/#</c>.</summary>
    public string Filter { get; set; } = string.Empty;

    /// <summary>Removed from the front of the local topic, when present.</summary>
    public string StripPrefix { get; set; } = string.Empty;

    /// <summary>Added in front of the (stripped) topic, e.g. <c>site-7/</c>.</summary>
    public string Prefix { get; set; } = string.Empty;

    /// <summary>QoS at the cloud broker: 0 or 1. Only QoS 1 waits for the broker's PUBACK before removing a message.</summary>
    public int Qos { get; set; } = 1;

    /// <summary>Publish with the retain flag set.</summary>
    public bool Retain { get; set; }
}

/// <summary>Cloud messages to bring home: remote subscription → local topic.</summary>
public sealed class DownlinkRule
{
    /// <summary>Remote MQTT topic filter to subscribe to, e.g. <c>site-7/commands/#</c>.</summary>
    public string Filter { get; set; } = string.Empty;

    /// <summary>Removed from the front of the remote topic, when present.</summary>
    public string StripPrefix { get; set; } = string.Empty;

    /// <summary>Added in front of the (stripped) topic locally.</summary>
    public string Prefix { get; set; } = string.Empty;

    public int Qos { get; set; } = 1;
}

/// <summary>The uplink's store-and-forward buffer.</summary>
public sealed class UplinkBufferOptions
{
    public long MaxMessages { get; set; } = 1_000_000;

    public long MaxBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>Messages older than this are dropped (counted as expired); zero keeps them until the limits above.</summary>
    public TimeSpan MaxAge { get; set; }

    /// <summary><c>drop-head</c> (keep the newest) or <c>reject-publish</c> (push back on publishers).</summary>
    public string Overflow { get; set; } = "drop-head";
}
