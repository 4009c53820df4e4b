using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Protocols;

/// <summary>
/// What a protocol contributes to the gateway. The host keeps one list of these and iterates
/// it: a protocol is one project plus one line in that list, and no host code names it.
/// </summary>
public interface IGatewayProtocol
{
    /// <summary>Short lower-case name (<c>mqtt</c>): its listeners and health check are named after it.</summary>
    string Name { get; }

    /// <summary>Its configuration section (<c>Mqtt</c>) and options type, so a bad value is reported by key.</summary>
    ProtocolOptions Options { get; }

    /// <summary>
    /// Registers its options (bound to <see cref="ProtocolOptions.Section"/> and validated at
    /// start, with messages naming the key), its hosted work, its health check
    /// (<c>services.AddHealthChecks().AddCheck(...)</c>) and its meters.
    /// </summary>
    void AddServices(IServiceCollection services, IConfiguration configuration);

    /// <summary>The Kestrel listeners to open, read from its validated options; one turned off in configuration is still listed, with <see cref="ProtocolListener.Enabled"/> false.</summary>
    IReadOnlyList<ProtocolListener> GetListeners(IServiceProvider services);

    /// <summary>Maps its endpoints on the HTTP listener (WebSocket paths); returns what it mapped, for the start-up line.</summary>
    IReadOnlyList<string> MapEndpoints(IEndpointRouteBuilder endpoints);
}
