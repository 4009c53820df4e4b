using System.Globalization;

namespace Gateway.Routing;

/// <summary>What a full queue does with a new message (<c>x-overflow</c>).</summary>
public enum OverflowPolicy
{
    /// <summary>Drop (or dead-letter) the oldest ready message to make room: telemetry keeps the newest.</summary>
    DropHead,

    /// <summary>Refuse the new message: publishers with confirms get a nack (back-pressure).</summary>
    RejectPublish,

    /// <summary>Refuse the new message and dead-letter it.</summary>
    RejectPublishDeadLetter,
}

/// <summary>
/// Queue arguments, named as RabbitMQ names them.
/// https://www.rabbitmq.com/docs/queues#optional-arguments
/// </summary>
public sealed record class QueueArguments
{
    public static readonly QueueArguments None = new();

    /// <summary><c>x-message-ttl</c>: how long a message may wait in the queue.</summary>
    public TimeSpan? MessageTtl { get; init; }

    /// <summary><c>x-max-length</c>: most ready messages.</summary>
    public long? MaxLength { get; init; }

    /// <summary><c>x-max-length-bytes</c>: most ready body bytes.</summary>
    public long? MaxLengthBytes { get; init; }

    /// <summary><c>x-overflow</c>: <c>drop-head</c>, <c>reject-publish</c> or <c>reject-publish-dlx</c>.</summary>
    public OverflowPolicy Overflow { get; init; }

    /// <summary><c>x-dead-letter-exchange</c>.</summary>
    public string? DeadLetterExchange { get; init; }

    /// <summary><c>x-dead-letter-routing-key</c>; the message's own key when absent.</summary>
    public string? DeadLetterRoutingKey { get; init; }

    /// <summary>Parses AMQP-style arguments; a bad value throws 406 naming the argument.</summary>
    public static QueueArguments Parse(IReadOnlyDictionary<string, object?>? arguments)
    {
        if (arguments is null || arguments.Count == 0)
        {
            return None;
        }

        var result = new QueueArguments();
        foreach (var (name, value) in arguments)
        {
            switch (name)
            {
                case "x-message-ttl":
                    result = result with { MessageTtl = TimeSpan.FromMilliseconds(NonNegative(name, value)) };
                    break;
                case "x-max-length":
                    result = result with { MaxLength = NonNegative(name, value) };
                    break;
                case "x-max-length-bytes":
                    result = result with { MaxLengthBytes = NonNegative(name, value) };
                    break;
                case "x-overflow":
                    result = result with
                    {
                        Overflow = AsString(name, value) switch
                        {
                            "drop-head" => OverflowPolicy.DropHead,
                            "reject-publish" => OverflowPolicy.RejectPublish,
                            "reject-publish-dlx" => OverflowPolicy.RejectPublishDeadLetter,
                            var other => throw new RoutingException(RoutingException.PreconditionFailed, $"invalid arg 'x-overflow': '{other}' is not drop-head, reject-publish or reject-publish-dlx"),
                        },
                    };
                    break;
                case "x-dead-letter-exchange":
                    result = result with { DeadLetterExchange = AsString(name, value) };
                    break;
                case "x-dead-letter-routing-key":
                    result = result with { DeadLetterRoutingKey = AsString(name, value) };
                    break;
                default:
                    // Unknown arguments are kept by RabbitMQ and ignored; so are they here.
                    break;
            }
        }

        return result;
    }

    private static long NonNegative(string name, object? value)
    {
        long number;
        try
        {
            number = value switch
            {
                sbyte or byte or short or ushort or int or uint or long => Convert.ToInt64(value, CultureInfo.InvariantCulture),
                string s when long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) => parsed,
                _ => -1,
            };
        }
        catch (OverflowException)
        {
            number = -1;
        }

        if (number < 0)
        {
            throw new RoutingException(RoutingException.PreconditionFailed, $"invalid arg '{name}': expected a non-negative integer");
        }

        return number;
    }

    private static string AsString(string name, object? value) => value switch
    {
        string s => s,
        byte[] b => System.Text.Encoding.UTF8.GetString(b),
        _ => throw new RoutingException(RoutingException.PreconditionFailed, $"invalid arg '{name}': expected a string"),
    };
}

/// <summary>How a queue is declared.</summary>
public sealed record class QueueOptions
{
    public static readonly QueueOptions Transient = new();

    public bool Durable { get; init; }

    /// <summary>Only <see cref="Owner"/> may use it; deleted when the owner goes.</summary>
    public bool Exclusive { get; init; }

    /// <summary>Deleted when its last consumer goes (once it has had one).</summary>
    public bool AutoDelete { get; init; }

    /// <summary>The connection that owns an exclusive queue.</summary>
    public string? Owner { get; init; }

    public IReadOnlyDictionary<string, object?>? Arguments { get; init; }

    /// <summary>
    /// When more than this many messages are ready, publishers wait (as RabbitMQ's flow control)
    /// until the consumers have taken half of them. 0 turns it off. Meant for queues that always
    /// have a consumer, such as a protocol adapter's delivery queue.
    /// </summary>
    public int FlowLimit { get; init; }

    /// <summary>
    /// Messages from this origin (protocol and connection) are not taken: an uplink's queue
    /// ignores what came down that same uplink, so nothing loops back to the cloud.
    /// </summary>
    public MessageOrigin? IgnoreOrigin { get; init; }

    /// <summary>
    /// Declared again from configuration at every start (an uplink's queues): a durable queue
    /// like this is not kept as a definition, nor are its bindings (<see cref="IDefinitionStore"/>).
    /// </summary>
    public bool FromConfiguration { get; init; }
}
