// The console works without this script; it only shows a request's opening
// price as the category and versions are chosen, and copies a link.
"use strict";
(function () {
  const form = document.getElementById("new-request");
  if (form) {
    const out = document.getElementById("price");
    const field = (name) => form.elements.namedItem(name);
    let timer = null;
    const update = () => {
      const category = field("category").value;
      if (!category) { out.textContent = "Choose a category to see the price."; return; }
      const query = new URLSearchParams({ category: category });
      for (const name of ["from_version", "to_version"]) {
        if (field(name).value) { query.set(name, field(name).value); }
      }
      if (field("third_party").checked) { query.set("third_party", "true"); }
      fetch("/console/price?" + query.toString(), { credentials: "same-origin" })
        .then((r) => r.json())
        .then((answer) => {
          out.textContent = "";
          const version = document.getElementById("price-list-version");
          if (version) { version.textContent = String(answer.price_list_version); }
          if (answer.price === null) { out.textContent = answer.reason; return; }
          out.append("Price: ");
          const strong = document.createElement("strong");
          strong.textContent = String(answer.price);
          out.append(strong, " credits");
        })
        .catch(() => { out.textContent = "The price shows once the request is checked."; });
    };
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 150); });
    form.addEventListener("change", update);
  }
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(input.value); }
      button.textContent = "Copied";
    });
  }
})();
