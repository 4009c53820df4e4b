namespace Gateway.Routing;

/// <summary>
/// A message as it travels through the router. Immutable once constructed; the body is owned
/// (never a view into a pooled buffer), so a message may be held by any number of queues.
/// </summary>
public sealed class GatewayMessage
{
    private static long s_lastId;

    public GatewayMessage(
        string exchange,
        string routingKey,
        ReadOnlyMemory<byte> body,
        MessageProperties? properties = null,
        MessageOrigin origin = default)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(routingKey);
        Id = Interlocked.Increment(ref s_lastId);
        Exchange = exchange;
        RoutingKey = routingKey;
        Body = body;
        Properties = properties ?? MessageProperties.Empty;
        Origin = origin;
    }

    /// <summary>Process-unique, increasing id.</summary>
    public long Id { get; }

    public string Exchange { get; }

    public string RoutingKey { get; }

    public ReadOnlyMemory<byte> Body { get; }

    public MessageProperties Properties { get; }

    public MessageOrigin Origin { get; }

    public bool Persistent => Properties.Persistent;

    /// <summary>A copy of this message addressed to another exchange and key (dead-lettering).</summary>
    public GatewayMessage Readdress(string exchange, string routingKey, MessageProperties properties) =>
        new(exchange, routingKey, Body, properties, Origin);
}

/// <summary>Where a message entered the gateway.</summary>
/// <param name="Protocol">"mqtt", "amqp", "stomp", "gpio", "internal", ...</param>
/// <param name="ConnectionId">The protocol's connection or client id.</param>
/// <param name="User">The authenticated user, if any.</param>
public readonly record struct MessageOrigin(string? Protocol, string? ConnectionId, string? User);
