// Starts Swagger UI on /openapi.json. A file of its own, not an inline script, so that
// the page's Content-Security-Policy can allow scripts from this origin only.
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // No call to the public validator service: the page works with no internet access.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
