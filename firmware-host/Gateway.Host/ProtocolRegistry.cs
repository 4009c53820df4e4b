using Gateway.Protocols;

namespace Gateway.Host;

/// <summary>The protocols this gateway was built with, and what they asked the host for.</summary>
internal sealed class ProtocolRegistry(IReadOnlyList<IGatewayProtocol> protocols)
{
    public IReadOnlyList<IGatewayProtocol> Protocols => protocols;

    /// <summary>What the protocols mapped on the HTTP listener, for the start-up line.</summary>
    public List<string> HttpEndpoints { get; } = [];

    public IEnumerable<ProtocolListener> Listeners(IServiceProvider services)
    {
        foreach (var protocol in protocols)
        {
            foreach (var listener in protocol.GetListeners(services))
            {
                yield return listener;
            }
        }
    }

    /// <summary>The configuration section of a protocol's options type, or null.</summary>
    public static string? SectionOf(Type options, IReadOnlyList<IGatewayProtocol> protocols)
    {
        foreach (var protocol in protocols)
        {
            if (protocol.Options.Type == options)
            {
                return protocol.Options.Section;
            }
        }

        return null;
    }
}
