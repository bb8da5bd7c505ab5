/* Starts Swagger UI on /docs with this server's OpenAPI document. A file of its own rather than an inline
 * script, so the Content-Security-Policy can stay `script-src 'self'` on the docs page too. */
(function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", location.href).href,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,  // the default validator is an outside web service; this server works offline
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  });
})();
