namespace Gateway.Routing;

public enum RouteStatus
{
    /// <summary>Delivered to at least one queue and refused by none.</summary>
    Routed,

    /// <summary>No binding matched.</summary>
    Unroutable,

    /// <summary>At least one matching queue refused the message (<c>x-overflow: reject-publish</c>).</summary>
    Rejected,

    /// <summary>The exchange does not exist.</summary>
    ExchangeNotFound,
}

/// <summary>The outcome of one publish.</summary>
/// <param name="Status">Overall outcome.</param>
/// <param name="QueueCount">Queues that accepted the message.</param>
/// <param name="RejectedCount">Queues that refused it.</param>
public readonly record struct RouteResult(RouteStatus Status, int QueueCount, int RejectedCount)
{
    public static RouteResult ExchangeNotFound => new(RouteStatus.ExchangeNotFound, 0, 0);
}
