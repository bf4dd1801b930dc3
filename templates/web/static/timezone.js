// Pre-select the visitor's timezone on the signup form. Without JavaScript the field stays UTC
// and can be changed by hand; the server validates whatever is sent.
(function () {
  "use strict";
  var field = document.getElementById("timezone");
  if (!field || field.getAttribute("data-guess") !== "true") {
    return;
  }
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  for (var i = 0; i < field.options.length; i += 1) {
    if (field.options[i].value === zone) {
      field.value = zone;
      return;
    }
  }
})();
