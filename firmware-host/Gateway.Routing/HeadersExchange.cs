namespace Gateway.Routing;

/// <summary>
/// Routes on message headers. A binding's arguments name the headers to compare and
/// <c>x-match</c>: <c>all</c> (default) or <c>any</c>; <c>all-with-x</c>/<c>any-with-x</c> also
/// compare arguments starting with <c>x-</c>. https://www.rabbitmq.com/docs/exchanges#headers
/// </summary>
internal sealed class HeadersExchange(string name, bool durable, bool autoDelete)
    : Exchange(name, ExchangeType.Headers, durable, autoDelete)
{
    private volatile Binding[] _all = [];

    internal override void Route(GatewayMessage message, RouteTargets targets)
    {
        var headers = message.Properties.Headers;
        foreach (var binding in _all)
        {
            if (IsMatch(binding.Arguments, headers))
            {
                targets.Add(binding.Queue);
            }
        }
    }

    private protected override void AddToIndex(Binding binding) => _all = With(_all, binding);

    private protected override void RemoveFromIndex(Binding binding) => _all = Without(_all, binding);

    internal static bool IsMatch(IReadOnlyDictionary<string, object?>? arguments, IReadOnlyDictionary<string, object?>? headers)
    {
        var mode = arguments is not null && arguments.TryGetValue("x-match", out var m) ? m as string ?? "all" : "all";
        var any = mode is "any" or "any-with-x";
        var withX = mode is "all-with-x" or "any-with-x";
        if (arguments is not null)
        {
            foreach (var (name, expected) in arguments)
            {
                if (!withX && name.StartsWith("x-", StringComparison.Ordinal))
                {
                    continue;
                }

                if (name == "x-match")
                {
                    continue;
                }

                var present = headers is not null && headers.TryGetValue(name, out var actual) &&
                    (expected is null || ValueEquals(expected, actual));
                if (any && present)
                {
                    return true;
                }

                if (!any && !present)
                {
                    return false;
                }
            }
        }

        // Every compared header matched for "all" (vacuously so when none were named);
        // none did for "any".
        return !any;
    }

    private static bool ValueEquals(object expected, object? actual) => expected switch
    {
        string s => actual is string a ? s == a : actual is byte[] b && s == System.Text.Encoding.UTF8.GetString(b),
        _ => Equals(expected, actual) || (IsNumber(expected) && IsNumber(actual) && Convert.ToDecimal(expected, System.Globalization.CultureInfo.InvariantCulture) == Convert.ToDecimal(actual, System.Globalization.CultureInfo.InvariantCulture)),
    };

    private static bool IsNumber(object? value) => value is sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal;
}
