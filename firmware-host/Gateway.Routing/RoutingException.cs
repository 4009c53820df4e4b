using System.Diagnostics.CodeAnalysis;

namespace Gateway.Routing;

/// <summary>
/// A topology operation the router refused. <see cref="ReplyCode"/> uses AMQP 0-9-1 reply codes
/// (404 not-found, 405 resource-locked, 406 precondition-failed, 403 access-refused, 540 not-implemented)
/// so every protocol adapter can map it to its own error.
/// </summary>
public sealed class RoutingException : Exception
{
    public const int AccessRefused = 403;
    public const int NotFound = 404;
    public const int ResourceLocked = 405;
    public const int PreconditionFailed = 406;
    public const int NotImplemented = 540;

    public RoutingException(int replyCode, string message)
        : base(message)
    {
        ReplyCode = replyCode;
    }

    public RoutingException()
    {
    }

    public RoutingException(string message)
        : base(message)
    {
    }

    public RoutingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int ReplyCode { get; }

    [DoesNotReturn]
    internal static void Throw(int replyCode, string message) => throw new RoutingException(replyCode, message);
}
