// Tabs ("Usage examples") and the phone-width menu, without a framework.
"use strict";

function selectTab(section, key) {
    for (const tab of section.querySelectorAll(":scope > .nav > [data-tab-key]")) {
        const selected = tab.dataset.tabKey === key;
        tab.classList.toggle("active", selected);
        tab.setAttribute("aria-selected", selected ? "true" : "false");
    }
    for (const panel of section.querySelectorAll(":scope > .tab-panel")) {
        panel.hidden = panel.dataset.tabKey !== key;
    }
}

function setUpTabs() {
    for (const section of document.querySelectorAll(".tabbed-section")) {
        const tabs = section.querySelectorAll(":scope > .nav > [data-tab-key]");
        if (tabs.length === 0) {
            continue;
        }
        section.classList.add("has-tabs");
        for (const tab of tabs) {
            tab.addEventListener("click", () => selectTab(section, tab.dataset.tabKey));
            tab.addEventListener("keydown", (event) => {
                if (event.key === "Enter" || event.key === " ") {
                    event.preventDefault();
                    selectTab(section, tab.dataset.tabKey);
                }
            });
        }
        selectTab(section, tabs[0].dataset.tabKey);
    }
}

function setUpMenu() {
    const toggle = document.querySelector(".nav-toggle");
    const sidebar = document.getElementById("sidebar");
    if (!toggle || !sidebar) {
        return;
    }
    toggle.addEventListener("click", () => {
        const open = sidebar.classList.toggle("open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
}

document.addEventListener("DOMContentLoaded", () => {
    setUpTabs();
    setUpMenu();
});
